"""``wfkit result``, ``resume`` and ``stream`` against a real worker on a SQLite world."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import wfkit
from tests.cli.serving import examples_worker

ROOT = Path(__file__).resolve().parents[2]
BASICS = "workflow//./examples/e2e/basics"
HOOKS = "workflow//./examples/e2e/hooks"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The examples' build and a SQLite world, with one worker serving it."""
    with examples_worker(tmp_path_factory.mktemp("results")) as environment:
        yield environment


def wfkit_cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfkit", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def start(env: dict[str, str], workflow: str, *args: str) -> str:
    started = wfkit_cli(env, "start", workflow, *args)
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


def wait_for_hook(env: dict[str, str], token: str) -> None:
    asyncio.run(wfkit.wait_for_hook(token, world=env["WFKIT_WORLD"], timeout=60))


def test_result_prints_a_completed_runs_value(env: dict[str, str]) -> None:
    run_id = start(env, f"{BASICS}//add_ten", "123")
    done = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "60")
    assert (done.returncode, done.stdout, done.stderr) == (0, "133\n", "")


def test_result_shows_the_projects_classes_as_json(env: dict[str, str]) -> None:
    run_id = start(env, "workflow//./examples/e2e/values//custom_classes")
    done = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    value = json.loads(done.stdout)
    assert value["point"] == {"x": 2, "y": 3}
    assert value["order"] == {"order_id": "o-1", "cents": 10}
    assert value["workflow_types"] == ["Point", "Box", "Order"]


def test_a_failed_run_prints_its_error_and_exits_1(env: dict[str, str]) -> None:
    run_id = start(env, f"{BASICS}//uncaught_fatal")
    failed = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "60")
    assert failed.returncode == 1 and failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith(f"wfkit result: run {run_id} failed [USER_ERROR]: ")
    assert "FatalError: Fatal step error" in line
    traced = wfkit_cli(env, "result", run_id, "--traceback")
    assert traced.returncode == 1 and "Traceback" in traced.stderr
    assert "examples/e2e/basics.py" in traced.stderr  # the user's file, not the bundle


def test_a_running_run_says_so_then_resume_finishes_it(env: dict[str, str]) -> None:
    run_id = start(env, f"{HOOKS}//wait_once", '"cli-resume"')
    wait_for_hook(env, "cli-resume")
    running = wfkit_cli(env, "result", run_id)
    assert running.returncode == 3
    assert running.stderr == (
        f"wfkit result: run {run_id} is running; it has no result yet (--wait waits for it)\n"
    )
    timed_out = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "0.5")
    assert timed_out.returncode == 3 and "still running after 0.5 s" in timed_out.stderr

    bad = wfkit_cli(env, "resume", "cli-resume", "{ok: 1}")
    assert bad.returncode == 1
    assert bad.stderr.startswith("wfkit resume: nothing sent: the payload is not JSON")
    assert len(bad.stderr.splitlines()) == 1
    resumed = wfkit_cli(env, "resume", "cli-resume", '{"ok": [1, "two"]}')
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed hook hook_") and run_id in resumed.stdout
    done = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "60")
    assert json.loads(done.stdout) == {"ok": [1, "two"]}


def test_resume_reads_stdin_and_refuses_an_unknown_token(env: dict[str, str]) -> None:
    run_id = start(env, f"{HOOKS}//hook_collector", '"cli-stdin"')
    wait_for_hook(env, "cli-stdin")
    first = wfkit_cli(env, "resume", "cli-stdin", "-", stdin='{"n": 1}\n')
    assert first.returncode == 0, first.stderr
    wait_for_hook(env, "cli-stdin")
    last = wfkit_cli(env, "resume", "cli-stdin", "-", stdin='{"n": 2, "done": true}')
    assert last.returncode == 0, last.stderr
    done = wfkit_cli(env, "result", run_id, "--wait", "--timeout", "60")
    assert json.loads(done.stdout)["collected"] == [{"n": 1}, {"n": 2, "done": True}]

    unknown = wfkit_cli(env, "resume", "no-such-token", "{}")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("wfkit resume: HookNotFoundError:")
    assert "no-such-token" in unknown.stderr and len(unknown.stderr.splitlines()) == 1


def test_stream_prints_chunks_and_follows_until_closed(env: dict[str, str]) -> None:
    run_id = start(env, "workflow//./examples/e2e/surface//streams")
    followed = subprocess.run(
        [sys.executable, "-m", "wfkit", "stream", run_id, "--follow"],
        cwd=ROOT, env=env, capture_output=True, timeout=90,
    )  # fmt: skip
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == b'hello world\x00{"done": true}\n'
    named = wfkit_cli(env, "stream", run_id, "--namespace", "test")
    assert named.stdout.splitlines() == ['{"n": 1}', '{"n": 2, "nested": [1, 2]}']
    tail = wfkit_cli(env, "stream", run_id, "--namespace", "test", "--start-index", "1")
    assert tail.stdout.splitlines() == ['{"n": 2, "nested": [1, 2]}']
