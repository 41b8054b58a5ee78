"""Bad input to the CLI and the client API gets one clear line and a non-zero exit, never a
traceback (issue 10, item 6): a file that is not SQLite, a stored schema version no wfkit
writes, a manifest with the wrong types, ``verify`` of no such run, and run ids that URLs
and the inspector cannot carry."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from wfkit import InvalidRunIdError, WfkitError, start_sync
from wfkit.worlds.memory import MemoryWorld

ROOT = Path(__file__).resolve().parents[2]


def wfkit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfkit", *args],
        cwd=ROOT,
        env={**os.environ, "WFKIT_WORLD": f"sqlite:///{tmp_path / 'wfkit.db'}", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal: a non-zero exit and exactly one line on stderr, no traceback."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_file_that_is_not_sqlite_is_one_line_and_left_alone(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database\n" * 100)
    line = one_line(wfkit(tmp_path, "--world", f"sqlite:///{junk}", "inspect", "runs"))
    assert f"{junk} is not a SQLite database wfkit can open" in line
    assert junk.read_bytes() == b"these are my notes, not a database\n" * 100


@pytest.mark.parametrize("version", [0, 99])
def test_a_schema_version_no_wfkit_writes_is_one_line(tmp_path: Path, version: int) -> None:
    assert wfkit(tmp_path, "inspect", "runs").returncode == 0  # a new, valid file
    with sqlite3.connect(tmp_path / "wfkit.db") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (version,))
    line = one_line(wfkit(tmp_path, "inspect", "runs"))
    assert "SchemaVersionError" in line and f"schema version {version}" in line


def test_a_manifest_with_the_wrong_types_is_one_line(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(
        json.dumps(
            {
                "version": 1,
                "workflows": {"a.py": {"f": {"id": 5, "module": "a"}}},
                "steps": ["a.py"],
                "classes": {"a.py": {"C": {"id": "class//./a//C", "module": "a", "step": 3}}},
            }
        )
    )
    line = one_line(wfkit(tmp_path, "worker", WFKIT_BUILD_DIR=str(build)))
    assert "InvalidBuildError" in line and "is malformed" in line
    assert "version: expected a string, got int" in line
    assert "workflows['a.py']['f']: 'id' must be a string, got int" in line
    assert "steps: expected an object, got list" in line
    assert "classes['a.py']['C']: 'step' must be a path string, got int" in line


def test_verify_of_no_such_run_fails(tmp_path: Path) -> None:
    line = one_line(wfkit(tmp_path, "verify", "wrun_NOPE"))
    assert "run 'wrun_NOPE' not found" in line


BAD_RUN_IDS = [
    "",
    "a/b",
    "a\\b",
    "nul\0byte",
    "bell\x07",
    "line\nbreak",
    "tab\there",
    "two words",
    "nbsp\u00a0",
    ".",
    "..",
    "x" * 201,
]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_start_refuses_run_ids_urls_cannot_carry(run_id: str) -> None:
    world = MemoryWorld()
    with pytest.raises(InvalidRunIdError) as refused:
        start_sync("workflow//./examples/e2e/basics//add_ten", 1, run_id=run_id, world=world)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, WfkitError)
    assert "\n" not in str(refused.value)
    assert world.runs.list() == []  # nothing was written


def test_start_accepts_ordinary_chosen_run_ids() -> None:
    world = MemoryWorld()
    for run_id in ("order-1234", "wrun_custom.v2", "x" * 200, "café:42"):
        run = start_sync("workflow//./examples/e2e/basics//add_ten", 1, run_id=run_id, world=world)
        assert run.run_id == run_id


def test_the_cli_refuses_a_run_id_with_a_slash(tmp_path: Path) -> None:
    done = wfkit(
        tmp_path, "start", "workflow//./examples/e2e/basics//add_ten", "1", "--run-id", "a/b"
    )
    line = one_line(done)
    assert "InvalidRunIdError" in line and "'/'" in line
