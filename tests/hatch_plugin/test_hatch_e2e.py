"""End to end: ``python -m build`` a throwaway project whose wheel uses the hook from a copy of wfkit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hatch_demo_project import write_project

from tests.e2e.packaging import copy_repo

pytestmark = pytest.mark.slow


IMPORT_CHECK = """
import importlib.util, json, sys
site = sys.argv[1]
build = site + "/__wfkit_build__"
found = {}
for mode in ("workflow", "step", "client"):
    spec = importlib.util.spec_from_file_location(f"gen_{mode}", f"{build}/{mode}/demoapp/flows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found[mode] = sorted(name for name in vars(module) if not name.startswith("_"))
import demoapp.flows, wfkit.runtime.gen
assert demoapp.flows.__file__.startswith(site), demoapp.flows.__file__
assert wfkit.runtime.gen.__file__.startswith(sys.argv[2]), wfkit.runtime.gen.__file__
from wfkit.runtime.loading.loader import load_build

load_build()  # finds __wfkit_build__/manifest.json on sys.path (the cwd has no build)
found["loader"] = sorted(m for m in sys.modules if m.startswith(("__wfkit_workflow__.", "__wfkit_step__.")))
print(json.dumps(found))
"""


def test_wheel_from_file_url_copy(tmp_path: Path) -> None:
    copy = copy_repo(tmp_path / "wfkit-copy")
    project = write_project(
        tmp_path / "demo",
        requires=f'"hatchling", "wfkit @ {copy.as_uri()}"',
        hook='paths = ["demoapp"]\n',
    )
    env = dict(os.environ)
    # --no-isolation builds with this venv's hatchling; the copy shadows the editable
    # install of the repo, so the hook, wfbuild and transformer all come from the copy.
    env["PYTHONPATH"] = str(copy)
    dist = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(dist), str(project)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "wfbuild: 3 files (1 transformed), 1 workflow, 1 step, 0 classes"
        in result.stdout + result.stderr
    )
    (wheel,) = dist.glob("demo_app-0.0.1-*.whl")

    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    assert {
        "demoapp/__init__.py",
        "demoapp/flows.py",
        "demoapp/util.py",
        "__wfkit_build__/manifest.json",
        "__wfkit_build__/workflow/demoapp/flows.py",
        "__wfkit_build__/step/demoapp/flows.py",
        "__wfkit_build__/client/demoapp/flows.py",
    } <= names
    assert not any(
        "build-state" in n or n.startswith("__wfkit_build__/workflow/demoapp/util") for n in names
    )
    manifest = json.loads((site / "__wfkit_build__" / "manifest.json").read_text())
    assert (
        manifest["workflows"]["demoapp/flows.py"]["pipeline"]["id"]
        == "workflow//./demoapp/flows//pipeline"
    )
    assert manifest["steps"]["demoapp/flows.py"]["add_one"]["step"] == "step/demoapp/flows.py"
    for path in (site / "__wfkit_build__").rglob("*.py"):
        compile(path.read_text(), str(path), "exec")

    # The generated modules import with only the wheel and wfkit (for wfkit.runtime.gen) on sys.path.
    check = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = [{str(site)!r}, {str(copy)!r}]\n"
         + IMPORT_CHECK, str(site), str(copy)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    found = json.loads(check.stdout)
    for mode in ("workflow", "step", "client"):
        assert {"add_one", "pipeline"} <= set(found[mode]), (mode, found[mode])
    # The runtime's loader finds the build in the installed wheel and imports its bundles.
    assert "__wfkit_workflow__.demoapp.flows" in found["loader"]
    assert "__wfkit_step__.demoapp.flows" in found["loader"]
