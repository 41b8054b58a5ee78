"""One trace across a worker restart: the caller's process starts the run, one worker
process works it until it waits on a hook and exits, a second worker process (a full
replay from the log) finishes it and its child run. Every span, from all three
processes, is in the caller's trace, and the chain from the child's step reaches the
caller."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_url
from tests.observability import workflows
from tests.observability.conftest import Telemetry
from tests.observability.traced_worker import _span_document
from wfkit.runtime.api.client import resume_hook, start
from wfkit.runtime.world_config import resolve_world

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = pytest.param(
    "postgres",
    marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(
            not postgres_url(), reason="WFKIT_TEST_POSTGRES_URL not set (CI sets it)"
        ),
    ],
)


def _world_spec(kind: str, tmp_path: Path) -> str:
    if kind == "local":
        return f"sqlite:///{tmp_path / 'wfkit.db'}"
    url = postgres_url()
    assert url
    return f"{url}{'&' if '?' in url else '?'}schema=otel_{uuid.uuid4().hex[:10]}"


def _worker_process(world: str, out: Path, run_id: str, until: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.observability.traced_worker", world, str(out), run_id, until],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    spans: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return spans


@pytest.mark.parametrize("kind", ["local", POSTGRES])
def test_a_run_resumed_by_another_worker_process_continues_the_trace(
    kind: str, telemetry: Telemetry, tmp_path: Path
) -> None:
    world = _world_spec(kind, tmp_path)
    with telemetry.tracer.start_as_current_span("caller"):
        run = asyncio.run(start(workflows.PARENT, "restart-1", world=world))

    first = _worker_process(world, tmp_path / "first.json", run.run_id, "hook")
    with telemetry.tracer.start_as_current_span("resumer"):
        asyncio.run(resume_hook("restart-1", {"n": 1}, world=world))
    second = _worker_process(world, tmp_path / "second.json", run.run_id, "end")

    records = resolve_world(world).runs
    assert records.get(run.run_id).status == "completed"
    here = [_span_document(s) for s in telemetry.spans()]
    spans = [*here, *first, *second]
    by_id = {s["span_id"]: s for s in spans}
    caller = next(s for s in here if s["name"] == "caller")
    in_trace = [s for s in spans if s["name"] != "resumer"]
    assert {s["trace_id"] for s in in_trace} == {caller["trace_id"]}

    started = next(s for s in here if s["name"] == "wfkit.start parent")
    runs_first = [s for s in first if s["name"] == "wfkit.run parent"]
    runs_second = [s for s in second if s["name"] == "wfkit.run parent"]
    assert runs_first and runs_second
    assert all(s["parent_id"] == started["span_id"] for s in [*runs_first, *runs_second])
    # The second process had no live replay: it replayed the log, in the same trace.
    assert runs_second[0]["attributes"]["wfkit.replay"] == "full"
    assert {s["pid"] for s in runs_first}.isdisjoint({s["pid"] for s in runs_second})
    assert {s["name"] for s in first} >= {
        "wfkit.step record",
        "wfkit.step flaky_once",
        "wfkit.wait",
    }

    child_step = next(s for s in second if s["name"] == "wfkit.step add_one")
    chain = [child_step["name"]]
    span = child_step
    while span["parent_id"] is not None:
        span = by_id[span["parent_id"]]
        chain.append(span["name"])
    assert chain == [
        "wfkit.step add_one",
        "wfkit.run child",
        "wfkit.start child",
        "wfkit.step start",
        "wfkit.run parent",
        "wfkit.start parent",
        "caller",
    ]
