"""``wfkit worker --log-level / -v / --log-format``, read from a real worker process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASICS = "workflow//./examples/e2e/basics//"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import wfbuild

    work = tmp_path_factory.mktemp("worker-logs")
    build = work / "build"
    wfbuild.build([ROOT / "examples"], root=ROOT, out=build)
    return {**os.environ, "WFKIT_BUILD_DIR": str(build), "PYTHONUNBUFFERED": "1"}


def _world(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wfkit.db'}"


def _start(env: dict[str, str], world: str, workflow: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wfkit", "--world", world, "start", BASICS + workflow, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _work_until_done(
    env: dict[str, str], world: str, run_id: str, *options: str
) -> tuple[str, str]:
    """Run ``wfkit worker OPTIONS`` until ``run_id`` ended, stop it with SIGTERM;
    its stdout and stderr."""
    from wfkit.runtime.world_config import resolve_world

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wfkit",
            "--world",
            world,
            "worker",
            "--sweep-interval",
            "0",
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        records = resolve_world(world).runs
        deadline = time.monotonic() + 60
        while records.get(run_id).status not in ("completed", "failed", "cancelled"):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the run did not end in time"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    return out, err


def test_json_logs_are_one_object_per_line_with_the_ids(
    env: dict[str, str], tmp_path: Path
) -> None:
    world = _world(tmp_path)
    run_id = _start(env, world, "retry_counter")  # its step fails twice, then succeeds
    out, err = _work_until_done(env, world, run_id, "--log-format", "json")
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert out == ""  # even the banner is a record
    assert lines[0]["message"].startswith("wfkit worker: world=local")
    retries = [d for d in lines if d.get("run_id") == run_id and d["level"] == "WARNING"]
    assert [d["attempt"] for d in retries] == [1, 2]
    step_ids = {d["step_id"] for d in retries}
    assert len(step_ids) == 1 and step_ids.pop().startswith("step_")
    assert all(d["logger"] == "wfkit.executor" for d in retries)
    assert "RuntimeError: attempt 1 fails" in retries[0]["message"]
    assert not [d for d in lines if d["level"] == "DEBUG"]  # the default level is INFO


def test_verbose_text_logs_include_debug_records(env: dict[str, str], tmp_path: Path) -> None:
    world = _world(tmp_path)
    run_id = _start(env, world, "add_ten", "1")
    out, err = _work_until_done(env, world, run_id, "-v")
    assert out.startswith("wfkit worker: world=local")
    completed = [
        line for line in err.splitlines() if f"run {run_id}" in line and "completed" in line
    ]
    assert len(completed) == 1 and " DEBUG wfkit.orchestrator: " in completed[0]


def test_log_level_error_keeps_only_errors(env: dict[str, str], tmp_path: Path) -> None:
    world = _world(tmp_path)
    run_id = _start(env, world, "uncaught_fatal")
    _out, err = _work_until_done(env, world, run_id, "--log-level", "error")
    records = [line for line in err.splitlines() if " wfkit." in line]
    assert records and all(" ERROR wfkit." in line for line in records)
    assert any(f"run {run_id}" in line and "failed with USER_ERROR" in line for line in records)
    assert any("FatalError: Fatal step error" in line for line in records)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--log-level", "loud"], "invalid choice: 'LOUD'"),
        (["--log-format", "xml"], "invalid choice: 'xml'"),
        (["-v", "--log-level", "INFO"], "not allowed with argument -v/--verbose"),
    ],
)
def test_bad_log_options_are_refused(options: list[str], complaint: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wfkit", "worker", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert complaint in done.stderr
