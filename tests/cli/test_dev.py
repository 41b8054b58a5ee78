"""``wfkit dev`` stops its watcher and worker when it is stopped (they were orphaned)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.wheel_project import build_project, unique_package, write_project

CONSOLE_SCRIPT = Path(sys.executable).parent / "wfkit"


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_dev_stops_its_watcher_and_worker(tmp_path: Path, signum: int) -> None:
    root = write_project(tmp_path / "project", unique_package())
    build_project(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFKIT_", "PYTHONPATH"))}
    dev = subprocess.Popen(
        [CONSOLE_SCRIPT, "dev", "--concurrency", "1"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(children) < 2:  # the watcher, and the worker (the build exists already)
            assert dev.poll() is None, "wfkit dev exited on its own"
            assert time.monotonic() < deadline, f"wfkit dev started {children}"
            time.sleep(0.2)
            children = children_of(dev.pid)
        time.sleep(1.0)  # let them install their own signal handling
        dev.send_signal(signum)
        assert dev.wait(timeout=30) == 0
        gone_by = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        for pid in children:  # started by this test's wfkit dev: never left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
