"""OpenTelemetry in one process: one trace from the caller of start() to a child run's
step, with the step, wait and hook spans and the metrics an operator reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.observability import workflows
from tests.observability.conftest import Telemetry
from wfkit.runtime.api.client import get_run, resume_hook, start
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.observability import otel
from wfkit.worlds.memory import MemoryWorld


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


def _named(spans: list[Any], name: str) -> list[Any]:
    return [s for s in spans if s.name == name]


def _one(spans: list[Any], name: str) -> Any:
    (found,) = _named(spans, name)
    return found


def _parent_of(spans: list[Any], span: Any) -> Any:
    by_id = {s.context.span_id: s for s in spans}
    assert span.parent is not None, f"{span.name} has no parent"
    return by_id[span.parent.span_id]


def _ancestry(spans: list[Any], span: Any) -> list[str]:
    """Span names from ``span`` up to the root, following parent ids."""
    by_id = {s.context.span_id: s for s in spans}
    names = [span.name]
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def _attempts(spans: list[Any], name: str) -> list[Any]:
    return sorted(_named(spans, name), key=lambda s: s.attributes["wfkit.step.attempt"])


def test_one_trace_from_the_caller_to_a_child_runs_step(telemetry: Telemetry) -> None:
    world = MemoryWorld()

    async def scenario() -> tuple[str, str, dict[str, list[Any]]]:
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
        stop = asyncio.Event()
        working = asyncio.create_task(worker.run(stop_event=stop))
        with telemetry.tracer.start_as_current_span("caller"):
            run = await start(workflows.PARENT, "approve-1", world=world)
        # Waiting on its hook, with its handler's message acked.
        await _until(
            lambda: (
                any(h.status == "active" for h in world.hooks.list(run_id=run.run_id))
                and not world.queue.live_run_ids()
            )
        )
        # Two runs' messages on a queue this worker does not consume: the queue depth.
        world.queue.enqueue("elsewhere", {"run_id": "wrun_a"})
        world.queue.enqueue("elsewhere", {"run_id": "wrun_b"})
        while_waiting = telemetry.metrics()
        with telemetry.tracer.start_as_current_span("resumer"):
            await resume_hook("approve-1", {"n": 41}, world=world)
        child_id = await run.result(timeout=10)
        assert await get_run(child_id, world=world).result(timeout=10) == 42
        stop.set()
        await working
        return run.run_id, child_id, while_waiting

    run_id, child_id, while_waiting = _run(scenario())
    spans = telemetry.spans()
    caller = _one(spans, "caller")
    assert {s.context.trace_id for s in spans if s.name != "resumer"} == {caller.context.trace_id}

    started = _one(spans, "wfkit.start parent")
    assert _parent_of(spans, started) is caller
    assert started.attributes["wfkit.run.id"] == run_id
    parent_runs = _named(spans, "wfkit.run parent")
    assert parent_runs and all(_parent_of(spans, s) is started for s in parent_runs)
    assert parent_runs[0].attributes["wfkit.replay"] == "full"

    # Inline steps hang below the run span that ran them.
    recorded = _one(spans, "wfkit.step record")
    assert _parent_of(spans, recorded) in parent_runs
    assert recorded.attributes["wfkit.step.attempt"] == 1

    # A retried step: two attempts, the first with its error and `retry`.
    first, second = _attempts(spans, "wfkit.step flaky_once")
    assert first.attributes["wfkit.step.retry"] is True
    assert first.attributes["wfkit.step.outcome"] == "retrying"
    assert first.attributes["error.type"] == "wfkit.runtime.errors.RetryableError"
    assert first.status.status_code.name == "ERROR"
    assert "first attempt fails" in (first.status.description or "")
    assert [e.name for e in first.events] == ["exception"]
    assert (second.attributes["wfkit.step.attempt"], second.attributes["wfkit.step.retry"]) == (
        2,
        False,
    )
    assert second.attributes["wfkit.step.outcome"] == "completed"
    assert second.status.status_code.name == "UNSET"

    wait = _one(spans, "wfkit.wait")
    assert _parent_of(spans, wait) in parent_runs
    # From its creation until it was due (a sleep of 0.05 s), then completed.
    due = datetime.fromisoformat(wait.attributes["wfkit.wait.resume_at"]).timestamp() * 1e9
    assert wait.start_time < due - 0.03e9 and wait.end_time >= due

    hook = _one(spans, "wfkit.hook")
    assert _parent_of(spans, hook) is started
    resumer = _one(spans, "resumer")
    assert [link.context.span_id for link in hook.links] == [resumer.context.span_id]
    assert "approve-1" not in str(dict(hook.attributes))  # a token is a secret

    child_step = _one(spans, "wfkit.step add_one")
    assert child_step.attributes["wfkit.run.id"] == child_id
    assert _ancestry(spans, child_step) == [
        "wfkit.step add_one",
        "wfkit.run child",
        "wfkit.start child",
        "wfkit.step start",
        "wfkit.run parent",
        "wfkit.start parent",
        "caller",
    ]

    depth = while_waiting["wfkit.queue.depth"]
    assert [(p.value, dict(p.attributes)) for p in depth] == [(2, {"wfkit.world": "memory"})]

    points = telemetry.metrics()
    by_step = {
        name: {p.attributes["wfkit.step.name"]: p.value for p in points[name]}
        for name in ("wfkit.steps.completed", "wfkit.steps.retried")
    }
    flaky = f"step{workflows.PREFIX}flaky_once"
    assert by_step["wfkit.steps.retried"] == {flaky: 1}
    assert by_step["wfkit.steps.completed"][flaky] == 1
    assert by_step["wfkit.steps.completed"][f"step{workflows.PREFIX}add_one"] == 1
    step_spans = [s for s in spans if s.name.startswith("wfkit.step ")]
    assert sum(p.count for p in points["wfkit.step.duration"]) == len(step_spans)
    completed_runs = {
        p.attributes["wfkit.workflow.name"]: p.value for p in points["wfkit.runs.completed"]
    }
    assert completed_runs == {workflows.PARENT: 1, f"workflow{workflows.PREFIX}child": 1}
    replays = {p.attributes["wfkit.replay"] for p in points["wfkit.replay.duration"]}
    assert "full" in replays


def test_a_failed_run_and_step_are_errors_in_the_trace(telemetry: Telemetry) -> None:
    world = MemoryWorld()

    async def scenario() -> str:
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
        with telemetry.tracer.start_as_current_span("caller"):
            run = await start(workflows.FATAL, world=world)
        await worker.run_until_complete(run.run_id, timeout=10)
        return run.run_id

    run_id = _run(scenario())
    spans = telemetry.spans()
    step = _one(spans, "wfkit.step always_fatal")
    assert step.attributes["wfkit.step.outcome"] == "failed"
    assert step.attributes["wfkit.step.retry"] is False
    assert step.attributes["error.type"] == "wfkit.runtime.errors.FatalError"
    (ran,) = _named(spans, "wfkit.run fatal")
    assert ran.attributes["wfkit.run.outcome"] == "failed"
    assert ran.attributes["wfkit.error.code"] == "USER_ERROR"
    assert ran.status.status_code.name == "ERROR"
    assert "card declined" in (ran.status.description or "")
    failed = telemetry.metrics()["wfkit.runs.failed"]
    assert [(p.value, p.attributes["wfkit.error.code"]) for p in failed] == [(1, "USER_ERROR")]
    assert ran.attributes["wfkit.run.id"] == run_id


def test_a_run_started_without_tracing_still_gets_one_trace(telemetry: Telemetry) -> None:
    """A run started where OpenTelemetry was off (``wfkit start`` from a shell) stores
    no trace context: its spans still share one trace, derived from the run id."""
    world = MemoryWorld()
    run = _run(_start_untraced(world))

    async def work() -> None:
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
        await worker.run_until_complete(run.run_id, timeout=10)

    _run(work())
    spans = telemetry.spans()
    assert not _named(spans, "wfkit.start child")
    names = {s.name for s in spans}
    assert {"wfkit.run child", "wfkit.step add_one"} <= names
    assert len({s.context.trace_id for s in spans}) == 1
    assert world.runs.get(run.run_id).execution_context == {}


async def _start_untraced(world: MemoryWorld) -> Any:
    from opentelemetry import trace

    from tests.observability.conftest import _reset_globals

    provider = trace.get_tracer_provider()
    _reset_globals()  # OpenTelemetry is off while this run starts
    try:
        return await start(f"workflow{workflows.PREFIX}child", 1, world=world)
    finally:
        trace.set_tracer_provider(provider)


def test_tracing_turns_on_when_the_application_configures_it_later() -> None:
    """wfkit asks for the provider on every call, so a provider set after wfkit's first
    run is used from then on (and none is used before)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from tests.observability.conftest import _reset_globals

    _reset_globals()
    try:
        assert otel.tracer() is None
        trace.set_tracer_provider(TracerProvider())
        assert otel.tracer() is not None
    finally:
        _reset_globals()
    assert otel.tracer() is None


@pytest.mark.parametrize("configured", [False, True])
def test_start_stores_the_trace_context_only_when_tracing_is_on(
    configured: bool, request: pytest.FixtureRequest
) -> None:
    if configured:
        telemetry: Telemetry = request.getfixturevalue("telemetry")
        with telemetry.tracer.start_as_current_span("caller") as caller:
            run = _run(start(workflows.CHILD, 1, world=(world := MemoryWorld())))
        stored = world.runs.get(run.run_id).execution_context["trace_context"]
        trace_id = f"{caller.get_span_context().trace_id:032x}"
        assert stored["traceparent"].split("-")[1] == trace_id
    else:
        run = _run(start(workflows.CHILD, 1, world=(world := MemoryWorld())))
        assert world.runs.get(run.run_id).execution_context == {}
