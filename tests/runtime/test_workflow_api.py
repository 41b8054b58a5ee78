"""The in-workflow API: durable sleep, hooks (plain and typed), metadata."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from replay_log import START, Log, Simulator, comparable, full_replay, incremental, make_run

from wfkit.runtime import gen
from wfkit.runtime.api.workflow import (
    HookDisposedError,
    create_hook,
    define_hook,
    get_step_metadata,
    get_workflow_metadata,
    parse_duration,
    sleep,
)
from wfkit.runtime.context import (
    StepContext,
    StepMetadata,
    WorkflowMetadata,
    current_step,
)
from wfkit.runtime.errors import HookConflictError, NotInWorkflowError, SerializationError
from wfkit.runtime.replay.session import Completed, PendingHook, Suspended, replay
from wfkit.runtime.serialization import serialize

ECHO = "step//./t//echo"
echo = gen.step_proxy(ECHO, "echo")


# --- sleep ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("1.5m", 90),
        ("2h", 7200),
        ("1d", 86400),
        ("500ms", 0.5),
        ("1h30m", 5400),
        ("2 hours", 7200),
        ("1 day, 2 hours", 93600),
        ("90", 90),
        ("0s", 0),
        (".5s", 0.5),
    ],
)
def test_parse_duration_strings(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "ten seconds", "10 parsecs", "10s5", "-1s", "1h 30"])
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_duration_numbers_and_timedelta() -> None:
    assert parse_duration(3) == timedelta(seconds=3)
    assert parse_duration(0.25) == timedelta(milliseconds=250)
    assert parse_duration(timedelta(minutes=2)) == timedelta(minutes=2)
    with pytest.raises(ValueError):
        parse_duration(-1)
    with pytest.raises(TypeError):
        parse_duration(True)
    with pytest.raises(TypeError):
        parse_duration([1])  # type: ignore[arg-type]


async def sleeper(duration: Any) -> float:
    before = get_workflow_metadata().workflow_started_at
    await sleep(duration)
    from wfkit.runtime.context import current_workflow

    ctx = current_workflow.get()
    assert ctx is not None
    return float((ctx.now() - before).total_seconds())


@pytest.mark.parametrize(
    "duration",
    ["10s", 10, 10.0, timedelta(seconds=10), START + timedelta(seconds=10)],
)
def test_sleep_is_a_durable_wait(duration: Any) -> None:
    log = Log()
    outcome = full_replay(sleeper, log.events, (duration,))
    assert isinstance(outcome, Suspended)
    (wait,) = outcome.waits
    assert wait.resume_at == START + timedelta(seconds=10)
    assert outcome.next_wake == wait.resume_at
    sim = Simulator(sleeper, args=(duration,))
    assert sim.play() == Completed(10.0)
    assert comparable(full_replay(sleeper, sim.log.events, (duration,))) == ("completed", 10.0)


def test_sleep_to_the_past_returns_at_once() -> None:
    outcome = full_replay(sleeper, Log().events, (START - timedelta(days=1),))
    assert outcome == Completed(0.0)
    assert full_replay(sleeper, Log().events, (0,)) == Completed(0.0)


def test_sleep_refuses_naive_datetimes() -> None:
    async def wf() -> str:
        try:
            await sleep(datetime(2030, 1, 1))
        except ValueError as exc:
            return str(exc)
        return "no"

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Completed) and "aware datetime" in outcome.value


def test_sleep_outside_a_workflow() -> None:
    with pytest.raises(NotInWorkflowError, match=r"sleep\(\) can only be called inside a workflow"):
        asyncio.run(sleep("1s"))


# --- hooks ---------------------------------------------------------------------------------


async def hook_collector(token: str) -> list[Any]:
    received = []
    hook = create_hook(token=token, metadata={"kind": "collector"})
    async for payload in hook:
        received.append(payload)
        if payload.get("done"):
            break
    return received


def test_hook_multi_payload_async_for() -> None:
    payloads = [{"n": 1}, {"n": 2}, {"n": 3, "done": True}]
    sim = Simulator(
        hook_collector,
        args=("tok",),
        hook_payloads=[(i + 1.0, "tok", p) for i, p in enumerate(payloads)],
    )
    assert sim.play() == Completed(payloads)
    first = sim.outcomes[0]
    assert isinstance(first, Suspended)
    (pending,) = first.hooks
    assert pending == PendingHook(
        pending.correlation_id, "tok", serialize({"kind": "collector"}), False, None
    )
    assert pending.correlation_id.startswith("hook_")
    events = sim.log.events
    assert comparable(full_replay(hook_collector, events, ("tok",))) == ("completed", payloads)
    assert comparable(incremental(hook_collector, events, ("tok",))[-1]) == ("completed", payloads)


def test_hook_payloads_arriving_before_the_await_are_buffered() -> None:
    async def wf() -> list[Any]:
        hook = create_hook(token="t")
        await echo("first")
        return [await hook, await hook]

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    log.add("hook_created", outcome.hooks[0].correlation_id, {"token": "t"})
    step = outcome.steps[0]
    log.add("step_created", step.correlation_id, {"step_name": ECHO, "input": step.input})
    log.add("hook_received", outcome.hooks[0].correlation_id, {"payload": 1})
    log.add("hook_received", outcome.hooks[0].correlation_id, {"payload": 2})
    log.add("step_completed", outcome.steps[0].correlation_id, {"result": "first"})
    assert full_replay(wf, log.events) == Completed([1, 2])


def test_hook_conflict_raises_in_the_workflow() -> None:
    async def wf() -> str:
        try:
            await create_hook(token="shared")
        except HookConflictError as exc:
            return str(exc)
        return "no"

    sim = Simulator(wf, taken_tokens={"shared": "wrun_other"})
    assert sim.play() == Completed(
        'Hook token "shared" is already in use by another workflow (run "wrun_other")'
    )
    assert [e.event_type for e in sim.log.events][-1] == "hook_conflict"
    assert comparable(full_replay(wf, sim.log.events)) == comparable(sim.outcomes[-1])


def test_default_token_is_random_and_url_safe() -> None:
    """Random at the end of the log (a replay reads the recorded one: test_hook_tokens)."""
    tokens: list[str] = []

    async def wf() -> None:
        tokens.append(create_hook().token)
        await echo(1)

    replay(wf, make_run(), Log().events, args=(), kwargs={})
    replay(wf, make_run(), Log().events, args=(), kwargs={})
    assert tokens[0] != tokens[1]
    assert len(tokens[0]) == 24
    assert all(c.isalnum() or c in "-_" for c in tokens[0])


def test_dispose_reports_a_disposal_then_consumes_hook_disposed() -> None:
    async def wf() -> str:
        with create_hook(token="once") as hook:
            first = await hook
        try:
            await hook
        except HookDisposedError:
            pass
        return str(first) + str(await echo("after"))

    log = Log()
    first = full_replay(wf, log.events)
    assert isinstance(first, Suspended)
    hook_id = first.hooks[0].correlation_id
    log.add("hook_created", hook_id, {"token": "once"})
    log.add("hook_received", hook_id, {"payload": "p"})
    second = full_replay(wf, log.events)
    assert isinstance(second, Suspended)
    assert second.disposals == (hook_id,)
    assert [s.input["args"] for s in second.steps] == [["after"]]
    log.add("hook_disposed", hook_id)
    third = full_replay(wf, log.events)
    assert isinstance(third, Suspended) and third.disposals == ()


def test_hook_disposed_before_creation_is_never_created() -> None:
    async def wf() -> Any:
        async with create_hook(token="never"):
            pass
        return await echo(1)

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Suspended)
    assert outcome.hooks == () and outcome.disposals == ()
    assert len(outcome.steps) == 1


def test_unserializable_hook_metadata_is_catchable() -> None:
    async def wf() -> str:
        try:
            create_hook(metadata={"lock": asyncio.Lock()})
        except SerializationError as exc:
            return exc.path
        return "no"

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Completed) and outcome.value.startswith("metadata")


def test_create_hook_outside_a_workflow() -> None:
    with pytest.raises(NotInWorkflowError):
        create_hook()


class Approval(BaseModel):
    ok: bool
    by: str = "nobody"


approval_hook = define_hook(Approval)


def test_typed_hook_validates_payloads() -> None:
    async def wf() -> list[Any]:
        hook = approval_hook.create(token="approve")
        first = await hook
        try:
            await hook
        except ValidationError:
            second = "invalid"
        return [first, second]

    sim = Simulator(
        wf,
        hook_payloads=[(1, "approve", {"ok": True, "by": "ann"}), (2, "approve", {"ok": "maybe"})],
    )
    assert sim.play() == Completed([Approval(ok=True, by="ann"), "invalid"])


def test_typed_hook_resume_validates_then_calls_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, Any]] = []

    async def resume_hook(token: str, payload: Any, *, world: Any) -> str:
        calls.append((token, payload))
        return "hook-record"

    def resume_hook_sync(token: str, payload: Any, *, world: Any) -> str:
        calls.append((token, payload))
        return "hook-record (sync)"

    fake = types.ModuleType("wfkit.runtime.api.hook_client")
    fake.resume_hook = resume_hook  # type: ignore[attr-defined]
    fake.resume_hook_sync = resume_hook_sync  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wfkit.runtime.api.hook_client", fake)
    assert asyncio.run(approval_hook.resume("approve", {"ok": True})) == "hook-record"
    assert approval_hook.resume_sync("approve", Approval(ok=False)) == "hook-record (sync)"
    assert calls == [
        ("approve", {"ok": True, "by": "nobody"}),
        ("approve", {"ok": False, "by": "nobody"}),
    ]
    with pytest.raises(ValidationError):
        asyncio.run(approval_hook.resume("approve", {"ok": "maybe"}))
    with pytest.raises(ValidationError):
        approval_hook.resume_sync("approve", {"ok": "maybe"})
    assert len(calls) == 2


# --- metadata ------------------------------------------------------------------------------


def test_workflow_metadata_in_a_workflow() -> None:
    async def wf() -> WorkflowMetadata:
        return get_workflow_metadata()

    run = make_run()
    outcome = replay(wf, run, Log().events, args=(), kwargs={})
    assert outcome == Completed(WorkflowMetadata(run.workflow_name, run.run_id, START, url=""))


def test_metadata_in_a_step_and_outside() -> None:
    workflow = WorkflowMetadata("workflow//./t//wf", "wrun_x", START, "http://localhost")
    step = StepMetadata("step_x", "step//./app//charge", 2, START + timedelta(seconds=1))
    token = current_step.set(StepContext(step=step, workflow=workflow, run_id="wrun_x"))
    try:
        assert get_workflow_metadata() == workflow
        assert get_step_metadata() == step
    finally:
        current_step.reset(token)
    with pytest.raises(NotInWorkflowError):
        get_workflow_metadata()
    with pytest.raises(NotInWorkflowError):
        get_step_metadata()


def test_step_metadata_is_not_available_in_a_workflow() -> None:
    async def wf() -> str:
        try:
            get_step_metadata()
        except NotInWorkflowError:
            return "refused"
        return "no"

    assert full_replay(wf, Log().events) == Completed("refused")


def test_url_reaches_workflow_metadata() -> None:
    async def wf() -> str:
        return get_workflow_metadata().url

    run = make_run()
    outcome = replay(wf, run, [], args=(), kwargs={}, url="http://example.test")
    assert outcome == Completed("http://example.test")
    assert START.tzinfo is UTC
