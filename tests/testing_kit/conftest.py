"""The testing kit's tests.

``project/`` is a user's project with its own test suite, run as a user would run it
(a pytest subprocess in that directory, the plugin auto-loaded from the installed
package); it is not collected as part of this repo's suite. The in-process tests here
load the same project's build through the plugin's own ``wfkit_build`` fixture,
pointed at ``project/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
collect_ignore = ["project"]

PROJECT = Path(__file__).resolve().parent / "project"


@pytest.fixture(scope="session")
def wfkit_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project built and loaded (its ``shop`` package importable)."""
    import wfbuild
    from wfkit.runtime.loading.loader import load_build

    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    out = tmp_path_factory.mktemp("shop-build")
    wfbuild.build(root=PROJECT, out=out)
    return load_build(out, root=PROJECT).build_dir
