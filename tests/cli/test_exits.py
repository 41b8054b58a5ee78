"""Every command that reads a run, given one that does not exist: exit 1 and one line on
stderr naming it (never an empty table, a success message or a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READS = [
    "inspect runs wrun_nope",
    "inspect steps wrun_nope",
    "inspect events wrun_nope",
    "inspect events wrun_nope --json",
    "inspect hooks wrun_nope",
    "inspect waits wrun_nope",
    "inspect streams wrun_nope",
    "cancel wrun_nope",
    "retry wrun_nope",
    "result wrun_nope",
    "result wrun_nope --wait",
    "stream wrun_nope",
    "stream wrun_nope --follow",
    "export wrun_nope",
    "verify wrun_nope",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("exits")
    return {**os.environ, "WFKIT_WORLD": f"sqlite:///{work / 'wfkit.db'}"}


@pytest.mark.parametrize("command", READS)
def test_an_unknown_run_exits_1_with_one_line(env: dict[str, str], command: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wfkit", *command.split()],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"wfkit {command.split()[0]}: ")
    assert "wrun_nope" in line and "not found" in line


def test_an_unknown_token_exits_1_with_one_line(env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wfkit", "resume", "tok_nope", "{}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == 'wfkit resume: HookNotFoundError: No live hook holds token "tok_nope"\n'
