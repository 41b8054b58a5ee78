"""``wfkit start``'s flow-control options (issue 13): ``--idempotency-key``, ``--deadline``,
``--queue`` / ``--key`` / ``--priority``, through ``python -m wfkit`` against a SQLite world
with one ``wfkit worker`` serving the examples' build (which declares the queues of
``examples/e2e/flow.py``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wfkit as wfkit_api
from tests.cli.serving import examples_worker
from wfkit.runtime.flow.queues import ADMISSION_QUEUE_PREFIX
from wfkit.worlds import create_world

ROOT = Path(__file__).resolve().parents[2]
FLOW = "workflow//./examples/e2e/flow"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The examples' build and a SQLite world, with one worker serving it."""
    with examples_worker(tmp_path_factory.mktemp("start-options")) as environment:
        yield environment


@pytest.fixture
def world(env: dict[str, str]) -> Iterator[Any]:
    """The same SQLite world, opened in the test to read the records the CLI wrote."""
    handle = create_world(env["WFKIT_WORLD"])
    try:
        yield handle
    finally:
        handle.close()


def wfkit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfkit", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def start(env: dict[str, str], *args: str) -> str:
    started = wfkit(env, "start", *args)
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


def result(env: dict[str, str], run_id: str) -> subprocess.CompletedProcess[str]:
    return wfkit(env, "result", run_id, "--wait", "--timeout", "60")


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal: a non-zero exit and exactly one line on stderr, no traceback."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_the_same_idempotency_key_prints_the_same_run(env: dict[str, str], world: Any) -> None:
    first = start(env, "--idempotency-key", "cli-order-7", f"{FLOW}//greet", '"ann"')
    again = start(env, "--idempotency-key", "cli-order-7", f"{FLOW}//greet", '"bob"')
    other = start(env, "--idempotency-key", "cli-order-8", f"{FLOW}//greet", '"cid"')
    assert first.startswith("wrun_") and again == first and other != first
    assert json.loads(result(env, first).stdout) == "hello ann"  # the first start's arguments
    assert [r.run_id for r in world.runs.list(limit=500) if r.idempotency_key == "cli-order-7"] == [
        first
    ]


def test_a_run_past_its_deadline_fails_with_run_deadline_exceeded(
    env: dict[str, str], world: Any
) -> None:
    run_id = start(env, "--deadline", "1s", f"{FLOW}//wait_on_hook", '"cli-deadline"')
    done = result(env, run_id)
    assert done.returncode == 1
    assert "[RUN_DEADLINE_EXCEEDED]" in done.stderr and "deadline" in done.stderr
    record = world.runs.get(run_id)
    assert record.deadline_at is not None and record.completed_at is not None
    assert record.completed_at >= record.deadline_at


def test_a_deadline_as_an_iso_time_is_kept_with_the_run(env: dict[str, str], world: Any) -> None:
    run_id = start(env, "--deadline", "2999-01-01T09:00:00Z", f"{FLOW}//greet", '"late"')
    assert json.loads(result(env, run_id).stdout) == "hello late"
    assert world.runs.get(run_id).deadline_at.isoformat() == "2999-01-01T09:00:00+00:00"


def test_queued_starts_are_admitted_one_at_a_time_by_priority(
    env: dict[str, str], world: Any
) -> None:
    """``flow_serial`` admits one run at a time: two runs started while it holds one that
    waits on a hook stay pending; once it ends, the lower priority goes first although it
    was started last."""
    blocker = start(env, "--queue", "flow_serial", f"{FLOW}//wait_on_hook", '"cli-queue"')
    asyncio.run(wfkit_api.wait_for_hook("cli-queue", world=env["WFKIT_WORLD"], timeout=60))
    runs = [
        start(env, "--queue", "flow_serial", "--key", "k", "--priority", str(priority),
              f"{FLOW}//work", json.dumps(label), "0.2")
        for label, priority in [("second", 5), ("first", -1)]
    ]  # fmt: skip
    assert [world.runs.get(r).status for r in runs] == ["pending", "pending"]
    assert wfkit(env, "resume", "cli-queue", "{}").returncode == 0
    done = [json.loads(result(env, r).stdout) for r in [blocker, *runs]]
    later = sorted(done[1:], key=lambda d: d["start"])
    assert [d["label"] for d in later] == ["first", "second"]
    assert later[0]["end"] <= later[1]["start"]  # never two at once
    record = world.runs.get(runs[0])
    assert (record.queue_name, record.queue_key, record.queue_priority) == ("flow_serial", "k", 5)
    assert record.admitted_by is not None


def test_a_bad_deadline_is_one_line_and_writes_nothing(env: dict[str, str], world: Any) -> None:
    before = len(world.runs.list(limit=500))
    bad = wfkit(env, "start", "--deadline", "soon", f"{FLOW}//greet", '"x"')
    assert bad.returncode == 2 and "--deadline not a duration: 'soon'" in one_line(bad)
    naive = wfkit(env, "start", "--deadline", "2030-01-01T09:00", f"{FLOW}//greet", '"x"')
    assert naive.returncode == 2 and "has no UTC offset" in one_line(naive)
    assert len(world.runs.list(limit=500)) == before


def test_a_key_without_a_queue_is_one_line(env: dict[str, str]) -> None:
    done = wfkit(env, "start", "--key", "k", f"{FLOW}//greet", '"x"')
    assert done.returncode == 1 and "pass queue= as well" in one_line(done)


def test_a_queue_no_worker_declares_is_named_in_a_warning(env: dict[str, str], world: Any) -> None:
    """A typo in ``--queue`` would leave the run pending for ever, in silence: the run is
    still started (a worker that declares the queue may come later), with a warning that
    names the queue, the declared ones and the likely intended one."""
    announced = ADMISSION_QUEUE_PREFIX + "flow_serial"
    deadline = time.monotonic() + 30
    while announced not in world.queue.queue_names(ADMISSION_QUEUE_PREFIX):
        assert time.monotonic() < deadline, "the worker never announced its queues"
        time.sleep(0.1)
    typo = wfkit(env, "start", "--queue", "flow_serail", f"{FLOW}//greet", '"typo"')
    assert typo.returncode == 0, typo.stderr
    run_id = typo.stdout.strip()
    assert world.runs.get(run_id).status == "pending"
    assert f"run {run_id} waits, pending, in queue 'flow_serail'" in typo.stderr
    assert "which no worker has declared yet" in typo.stderr
    assert "Did you mean 'flow_serial'?" in typo.stderr
    assert "flow_throttled" in typo.stderr  # among the declared queues listed
    assert "Traceback" not in typo.stderr
    assert wfkit(env, "cancel", run_id).returncode == 0

    served = wfkit(env, "start", "--queue", "flow_serial", f"{FLOW}//greet", '"served"')
    assert served.returncode == 0 and "no worker has declared" not in served.stderr
    assert json.loads(result(env, served.stdout.strip()).stdout) == "hello served"
