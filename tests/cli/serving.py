"""The examples' build and a SQLite world with one ``wfkit worker`` serving it: the
set-up of the CLI tests that drive ``python -m wfkit`` against a live worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def examples_worker(work: Path) -> Iterator[dict[str, str]]:
    """Build ``examples/`` under ``work``, start a worker on ``work/wfkit.db``; yield
    the environment (``WFKIT_BUILD_DIR``, ``WFKIT_WORLD``) CLI calls should use."""
    import wfbuild

    build = work / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    environment = {
        **os.environ,
        "WFKIT_BUILD_DIR": str(build),
        "WFKIT_WORLD": f"sqlite:///{work / 'wfkit.db'}",
    }
    with (work / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "wfkit", "worker", "--concurrency", "4"],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield environment
        finally:
            worker.terminate()
            worker.wait(timeout=30)
