"""Replay on hand-built event logs: sequential steps, fan-out, log order, failures, divergence."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import inspect
import os
import random
import time
import uuid
import weakref
from datetime import datetime, timedelta
from typing import Any

import pytest
from replay_log import (
    RUN_ID,
    START,
    Log,
    Simulator,
    comparable,
    full_replay,
    incremental,
    make_run,
)

from wfkit.runtime import gen
from wfkit.runtime.context import current_mode, current_workflow
from wfkit.runtime.errors import (
    CorruptedEventLogError,
    FatalError,
    ReplayDivergenceError,
    SerializationError,
    WorkflowSuspension,
)
from wfkit.runtime.replay.calls import CorrelationIds
from wfkit.runtime.replay.session import (
    Completed,
    Failed,
    PendingStep,
    ReplaySession,
    Suspended,
    WorkflowDeadlockError,
    replay,
)
from wfkit.runtime.serialization import serialize, serialize_call, serialize_error

ADD = "step//./t//add"
UPPER = "step//./t//upper"
add = gen.step_proxy(ADD, "add")
upper = gen.step_proxy(UPPER, "upper")


async def add_ten(x: int) -> int:
    a = await add(x, 2)
    b = await add(a, 3)
    return int(await add(b, 5))


async def gather_three() -> str:
    parts = await asyncio.gather(upper("a"), upper("b"), upper("c"))
    return "".join(parts)


def created(log: Log, s: Suspended) -> None:
    for step in s.steps:
        log.add(
            "step_created", step.correlation_id, {"step_name": step.step_id, "input": step.input}
        )


def complete(log: Log, cid: str, result: Any) -> None:
    log.add("step_started", cid)
    log.add("step_completed", cid, {"result": serialize(result)})


# --- sequential steps ---------------------------------------------------------------


def test_add_ten_suspends_one_step_at_a_time_then_completes() -> None:
    log = Log()
    session = ReplaySession(add_ten, make_run(), args=(123,), kwargs={})
    fed = 0
    expected_args = [[123, 2], [125, 3], [128, 5]]
    for want in expected_args:
        outcome = session.feed(log.events[fed:])
        fed = len(log.events)
        assert isinstance(outcome, Suspended)
        assert [s.input["args"] for s in outcome.steps] == [want]
        assert outcome.steps[0].step_id == ADD
        assert outcome.steps[0].correlation_id.startswith("step_")
        assert outcome.hooks == () and outcome.waits == () and outcome.disposals == ()
        assert outcome.outstanding_steps == ()
        created(log, outcome)
        outcome = session.feed(log.events[fed:])
        fed = len(log.events)
        assert isinstance(outcome, Suspended)
        assert outcome.steps == ()
        cid = log.events[-1].correlation_id
        assert cid is not None
        assert outcome.outstanding_steps == ((cid, ADD),)
        complete(log, cid, sum(want))
    final = session.feed(log.events[fed:])
    assert final == Completed(133)
    assert session.done
    assert session.last_event_id == log.events[-1].event_id
    assert full_replay(add_ten, log.events, (123,)) == Completed(133)


def test_same_call_order_gives_same_ids_across_sessions() -> None:
    first = replay(add_ten, make_run(), Log().events, args=(1,), kwargs={})
    second = replay(add_ten, make_run(), Log().events, args=(1,), kwargs={})
    assert isinstance(first, Suspended) and isinstance(second, Suspended)
    assert first.steps == second.steps
    other_run = replay(
        add_ten, make_run("wrun_other"), Log("wrun_other").events, args=(1,), kwargs={}
    )
    assert isinstance(other_run, Suspended)
    assert other_run.steps[0].correlation_id != first.steps[0].correlation_id


def test_feed_after_done_returns_the_final_outcome() -> None:
    sim = Simulator(add_ten, args=(1,), steps={ADD: lambda a, b: a + b})
    assert sim.play() == Completed(11)
    session = ReplaySession(add_ten, make_run(), args=(1,), kwargs={})
    assert session.feed(sim.log.events) == Completed(11)
    assert session.feed([]) == Completed(11)
    session.close()
    session.close()


def test_run_started_absent_clock_starts_at_run_start() -> None:
    seen: list[datetime] = []

    async def wf() -> None:
        ctx = current_workflow.get()
        assert ctx is not None
        seen.append(ctx.now())
        assert current_mode.get() == "workflow"
        assert ctx.metadata.workflow_run_id == make_run().run_id
        await add(1, 1)

    outcome = replay(wf, make_run(), [], args=(), kwargs={})
    assert isinstance(outcome, Suspended)
    assert seen == [START]
    assert current_workflow.get() is None  # the caller's context is untouched


# --- fan-out and log order -------------------------------------------------------------


def test_gather_three_suspends_with_three_steps_in_call_order() -> None:
    log = Log()
    outcome = full_replay(gather_three, log.events)
    assert isinstance(outcome, Suspended)
    assert [s.input["args"] for s in outcome.steps] == [["a"], ["b"], ["c"]]
    assert [s.step_id for s in outcome.steps] == [UPPER] * 3
    assert len({s.correlation_id for s in outcome.steps}) == 3
    created(log, outcome)
    # Results arrive in another order than the calls: c, a, b.
    cids = [s.correlation_id for s in outcome.steps]
    complete(log, cids[2], "C")
    again = full_replay(gather_three, log.events)
    assert isinstance(again, Suspended)
    assert again.steps == ()
    assert again.outstanding_steps == ((cids[0], UPPER), (cids[1], UPPER))
    complete(log, cids[0], "A")
    complete(log, cids[1], "B")
    assert full_replay(gather_three, log.events) == Completed("ABC")


def test_results_are_delivered_strictly_in_log_order() -> None:
    order: list[str] = []

    async def collect(name: str) -> None:
        order.append(await upper(name))

    async def wf() -> list[str]:
        await asyncio.gather(collect("a"), collect("b"), collect("c"))
        return order

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    created(log, outcome)
    cids = [s.correlation_id for s in outcome.steps]
    for index in (1, 2, 0):
        complete(log, cids[index], "abc"[index].upper())
    order.clear()
    assert full_replay(wf, log.events) == Completed(["B", "C", "A"])


def test_step_failure_reaches_the_workflow_with_its_type() -> None:
    async def wf() -> str:
        try:
            await add(1, 2)
        except FatalError as exc:
            return f"caught {exc}"
        return "no"

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    created(log, outcome)
    cid = outcome.steps[0].correlation_id
    log.add("step_started", cid)
    log.add(
        "step_retrying",
        cid,
        {"error": serialize_error(ValueError("x")), "retry_after": START.isoformat()},
    )
    log.add("step_started", cid)
    log.add("step_failed", cid, {"error": serialize_error(FatalError("boom"))})
    assert full_replay(wf, log.events) == Completed("caught boom")


def test_uncaught_user_error_fails_with_user_error_and_traceback() -> None:
    async def wf() -> None:
        await add(1, 2)
        raise KeyError("missing")

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    created(log, outcome)
    complete(log, outcome.steps[0].correlation_id, 3)
    failed = full_replay(wf, log.events)
    assert isinstance(failed, Failed)
    assert failed.code == "USER_ERROR"
    assert isinstance(failed.error, KeyError)
    tb = failed.error.__traceback__
    assert tb is not None
    assert tb.tb_frame.f_code.co_name == "wf"  # starts in the user's code, not ours


def test_synchronous_error_before_any_await_fails_the_run() -> None:
    async def wf(x: int) -> None:
        raise ValueError(f"bad {x}")

    failed = replay(wf, make_run(), Log().events, args=(7,), kwargs={})
    assert isinstance(failed, Failed) and failed.code == "USER_ERROR"
    assert str(failed.error) == "bad 7"


def test_serialization_error_at_the_call_site_is_catchable() -> None:
    async def wf() -> str:
        try:
            add(1, object())
        except SerializationError as exc:
            return f"caught at {exc.path}"
        return "no"

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Completed)
    assert outcome.value.startswith("caught at args[1]")


def test_unreadable_step_result_raises_at_the_await() -> None:
    async def wf() -> str:
        try:
            await add(1, 2)
        except SerializationError:
            return "caught"
        return "no"

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    created(log, outcome)
    cid = outcome.steps[0].correlation_id
    log.add("step_completed", cid, {"result": {"$t": "no-such-tag", "v": 1}})
    assert full_replay(wf, log.events) == Completed("caught")


# --- divergence and corruption ----------------------------------------------------------


def test_divergence_names_both_steps() -> None:
    log = Log()
    outcome = full_replay(add_ten, log.events, (1,))
    assert isinstance(outcome, Suspended)
    cid = outcome.steps[0].correlation_id
    log.add(
        "step_created", cid, {"step_name": "step//./t//charge", "input": outcome.steps[0].input}
    )
    failed = full_replay(add_ten, log.events, (1,))
    assert isinstance(failed, Failed)
    assert failed.code == "REPLAY_DIVERGENCE"
    assert isinstance(failed.error, ReplayDivergenceError)
    site = f"{os.path.relpath(__file__)}:{add_ten.__code__.co_firstlineno + 1}"
    assert str(failed.error) == (
        f"{site}: replay divergence in workflow wf (run {RUN_ID}): the code changed since "
        "the run started (or is not deterministic): the log records step charge(1, 2) "
        "here, the code now calls step add(1, 2)"
    )
    assert failed.error.site == site
    assert failed.error.recorded == "step charge(1, 2)"
    assert failed.error.current == "calls step add(1, 2)"


def test_event_for_a_call_of_another_kind_is_divergence() -> None:
    log = Log()
    outcome = full_replay(add_ten, log.events, (1,))
    assert isinstance(outcome, Suspended)
    log.add("wait_created", outcome.steps[0].correlation_id, {"resume_at": START.isoformat()})
    failed = full_replay(add_ten, log.events, (1,))
    assert isinstance(failed, Failed) and failed.code == "REPLAY_DIVERGENCE"


def test_unconsumed_event_is_a_corrupted_log() -> None:
    log = Log()
    event = log.add("step_completed", "step_01NOBODYCALLEDTHIS0000000", {"result": 1})
    failed = full_replay(add_ten, log.events, (1,))
    assert isinstance(failed, Failed)
    assert failed.code == "CORRUPTED_EVENT_LOG"
    assert isinstance(failed.error, CorruptedEventLogError)
    assert str(failed.error).startswith(
        f"Unconsumed event in event log: event_type=step_completed, "
        f"correlation_id=step_01NOBODYCALLEDTHIS0000000, event_id={event.event_id}"
    )


def test_completion_without_creation_is_corrupted() -> None:
    log = Log()
    outcome = full_replay(add_ten, log.events, (1,))
    assert isinstance(outcome, Suspended)
    log.add("step_completed", outcome.steps[0].correlation_id, {"result": 3})
    failed = full_replay(add_ten, log.events, (1,))
    assert isinstance(failed, Failed) and failed.code == "CORRUPTED_EVENT_LOG"


def test_internal_failure_closes_the_session_without_hanging() -> None:
    cleaned: list[str] = []

    async def wf() -> None:
        try:
            await add(1, 2)
        finally:
            cleaned.append("finally")
            with pytest.raises(WorkflowSuspension):
                add(3, 4)  # durable calls after the session closed are refused

    log = Log()
    log.add("step_created", "step_01BOGUS000000000000000000", {"step_name": ADD, "input": {}})
    session = ReplaySession(wf, make_run(), args=(), kwargs={})
    failed = session.feed(log.events)
    assert isinstance(failed, Failed) and failed.code == "CORRUPTED_EVENT_LOG"
    assert session.done
    assert cleaned == ["finally"]


def test_blocking_on_nothing_durable_fails_instead_of_hanging() -> None:
    async def wf() -> None:
        await add(1, 1)
        await asyncio.Event().wait()

    log = Log()
    outcome = full_replay(wf, log.events)
    assert isinstance(outcome, Suspended)
    created(log, outcome)
    complete(log, outcome.steps[0].correlation_id, 2)
    failed = full_replay(wf, log.events)
    assert isinstance(failed, Failed) and failed.code == "USER_ERROR"
    assert isinstance(failed.error, WorkflowDeadlockError)
    assert "waits on nothing durable" in str(failed.error)


# --- determinism --------------------------------------------------------------------------


def test_time_random_and_uuid_twins_are_identical_across_replays() -> None:
    async def wf() -> list[Any]:
        values: list[Any] = [
            gen.deterministic("time.time")(),
            gen.deterministic("datetime.datetime.now")(tz=START.tzinfo),
            gen.deterministic("random.random")(),
            str(gen.deterministic("uuid.uuid4")()),
            gen.deterministic("secrets.token_hex")(4),
        ]
        await add(1, 1)
        values.append(gen.deterministic("time.time")())
        values.append(gen.deterministic("random.randint")(1, 10**9))
        return values

    log = Log()
    first = full_replay(wf, log.events)
    assert isinstance(first, Suspended)
    created(log, first)
    log.tick(5)
    complete(log, first.steps[0].correlation_id, 2)
    a = full_replay(wf, log.events)
    b = full_replay(wf, log.events)
    assert isinstance(a, Completed) and a == b
    assert a.value[0] == START.timestamp()
    assert a.value[5] == log.events[-1].created_at.timestamp()  # the clock moved with the log
    assert uuid.UUID(a.value[3]).version == 4
    assert gen.deterministic("time.time") is time.time  # outside a workflow: the real thing
    assert gen.deterministic("random.random") == random.random


def test_user_randomness_does_not_shift_step_ids() -> None:
    async def plain() -> None:
        await add(1, 1)

    async def with_random() -> None:
        gen.deterministic("random.random")()
        gen.deterministic("uuid.uuid4")()
        await add(1, 1)

    a = full_replay(plain, Log().events)
    b = full_replay(with_random, Log().events)
    assert isinstance(a, Suspended) and isinstance(b, Suspended)
    assert a.steps == b.steps


def test_pending_step_input_is_serialize_call_output() -> None:
    outcome = full_replay(add_ten, Log().events, (5,))
    assert isinstance(outcome, Suspended)
    step = outcome.steps[0]
    assert step == PendingStep(step.correlation_id, ADD, serialize_call((5, 2), {}))


# --- linear cost ----------------------------------------------------------------------------


def test_thousand_sequential_steps_incrementally(capsys: pytest.CaptureFixture[str]) -> None:
    n = 1000

    async def many() -> int:
        total = 0
        for _ in range(n):
            total = await add(total, 1)
        return total

    log = Log()
    session = ReplaySession(many, make_run(), args=(), kwargs={})
    fed = 0
    costs: dict[int, float] = {}
    outcome = session.feed(log.events)
    fed = len(log.events)
    for i in range(1, n + 1):
        assert isinstance(outcome, Suspended) and len(outcome.steps) == 1
        step = outcome.steps[0]
        log.add("step_created", step.correlation_id, {"step_name": ADD, "input": step.input})
        log.add("step_started", step.correlation_id)
        log.add("step_completed", step.correlation_id, {"result": i})
        began = time.perf_counter()
        outcome = session.feed(log.events[fed:])
        costs[i] = time.perf_counter() - began
        fed = len(log.events)
    assert outcome == Completed(n)
    assert fed == 2 + 3 * n
    began = time.perf_counter()
    assert full_replay(many, log.events) == Completed(n)
    full = time.perf_counter() - began
    with capsys.disabled():
        print(
            f"\n[replay cost] per-step feed: step 10 {costs[10] * 1e6:.0f} µs, "
            f"step 100 {costs[100] * 1e6:.0f} µs, step 999 {costs[999] * 1e6:.0f} µs, "
            f"step 1000 (completes the run, closes the session) {costs[1000] * 1e6:.0f} µs; "
            f"median of steps 2-100 {sorted(list(costs.values())[1:100])[49] * 1e6:.0f} µs, "
            f"of steps 901-1000 {sorted(list(costs.values())[-100:])[50] * 1e6:.0f} µs; "
            f"full replay of {n} steps {full * 1e3:.1f} ms"
        )


def test_outcomes_from_prefixes_match_incremental_feeding() -> None:
    sim = Simulator(
        gather_three,
        steps={UPPER: str.upper},
        durations={UPPER: lambda s: {"a": 3, "b": 1, "c": 2}[s]},
    )
    assert sim.play() == Completed("ABC")
    step_events = incremental(gather_three, sim.log.events)
    for k in range(1, len(sim.log.events) + 1):
        assert comparable(full_replay(gather_three, sim.log.events[:k])) == comparable(
            step_events[k - 1]
        )


def test_clock_never_moves_backwards() -> None:
    seen: list[datetime] = []

    async def wf() -> None:
        ctx = current_workflow.get()
        assert ctx is not None
        await add(1, 1)
        seen.append(ctx.now())

    log = Log()
    first = full_replay(wf, log.events)
    assert isinstance(first, Suspended)
    created(log, first)
    cid = first.steps[0].correlation_id
    log.add("step_completed", cid, {"result": 2}, at=START + timedelta(seconds=3))
    events = list(log.events)
    # An event stamped earlier than the one before it does not rewind the clock.
    events[-1] = events[-1].model_copy(update={"created_at": START - timedelta(seconds=60)})
    assert full_replay(wf, events) == Completed(None)
    assert seen[-1] == START


def test_correlation_ids_are_crockford_ulids() -> None:
    outcome = full_replay(gather_three, Log().events)
    assert isinstance(outcome, Suspended)
    crockford = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    for step in outcome.steps:
        ulid = step.correlation_id.removeprefix("step_")
        assert len(ulid) == 26 and set(ulid) <= crockford
        assert _ulid_ms(ulid) == int(START.timestamp() * 1000)  # timestamp: the run's start


def test_correlation_ids_sort_in_call_order() -> None:
    async def wf() -> None:
        from wfkit.runtime.api.workflow import create_hook

        calls = [upper(str(i)) for i in range(20)]
        create_hook()
        await asyncio.gather(*calls, asyncio.sleep(5))

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Suspended)
    ids = [s.correlation_id.partition("_")[2] for s in outcome.steps]
    ids += [h.correlation_id.partition("_")[2] for h in outcome.hooks]
    ids += [w.correlation_id.partition("_")[2] for w in outcome.waits]
    assert ids == sorted(ids) and len(set(ids)) == 22


def _ulid_ms(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value >> 80


def test_ids_and_randomness_of_a_run_are_pinned() -> None:
    """The exact ids and random values a run gets: logs written by earlier versions must
    replay the same (a lazily seeded generator or a faster id encoder must not move them)."""
    seen: list[Any] = []

    async def wf() -> None:
        seen.append(gen.deterministic("random.random")())
        seen.append(str(gen.deterministic("uuid.uuid4")()))
        seen.append(gen.deterministic("random.randint")(1, 10**9))
        await asyncio.gather(upper("a"), upper("b"), asyncio.sleep(5))

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Suspended)
    assert seen == [0.29866357437663416, "2d234311-2b5d-4f75-8792-f0a1daa1c3a8", 989573448]
    assert [s.correlation_id for s in outcome.steps] == [
        "step_01KDWPVNG00TSK3BMX6483NFEW",
        "step_01KDWPVNG00TSK3BMX6483NFEX",
    ]
    assert [w.correlation_id for w in outcome.waits] == ["wait_01KDWPVNG00TSK3BMX6483NFEY"]


def test_ids_of_a_run_are_pinned_without_randomness() -> None:
    """The id stream does not depend on whether the workflow drew random numbers."""
    outcome = full_replay(gather_three, Log().events)
    assert isinstance(outcome, Suspended)
    assert [s.correlation_id for s in outcome.steps] == [
        "step_01KDWPVNG00TSK3BMX6483NFEW",
        "step_01KDWPVNG00TSK3BMX6483NFEX",
        "step_01KDWPVNG00TSK3BMX6483NFEY",
    ]


def test_correlation_id_stream_is_pinned() -> None:
    """2,000 ids of one stream (carries through every character of the random part)."""
    ids = CorrelationIds(
        "wrun_01PINNED", datetime(2031, 7, 9, 3, 4, 5, 678000, tzinfo=START.tzinfo)
    )
    got = [ids.next(("step", "hook", "wait")[i % 3]) for i in range(2000)]
    assert got[0] == "step_01RG072NSED23V4VMRVB4GSJBN"
    assert got[-1] == "hook_01RG072NSED23V4VMRVB4GSMA4"
    digest = hashlib.sha256("\n".join(got).encode()).hexdigest()
    assert digest == "70048ec5542b54377c10f4c9f42bea29fcb358f7540f0c64d07ee40f5d4edf61"
    assert ids.issued == 2000
    assert ids.position(got[1234]) == 1235
    assert ids.position("step_" + "0" * 26) is None


@pytest.mark.parametrize("finished", [True, False])
def test_a_closed_session_is_freed_by_reference_counting(finished: bool) -> None:
    """No reference cycle outlives ``close()`` (finished, or evicted while suspended): a
    worker's sessions must not pile up for the cyclic collector (a full collection of a
    busy worker's heap costs tens of milliseconds)."""
    log = Log()
    if finished:
        first = full_replay(add_ten, log.events, (1,))
        for _ in range(3):
            assert isinstance(first, Suspended)
            created(log, first)
            complete(log, first.steps[0].correlation_id, 0)
            first = full_replay(add_ten, log.events, (1,))
        assert isinstance(first, Completed)
    gc.collect()
    gc.disable()
    try:
        session = ReplaySession(add_ten, make_run(), args=(1,), kwargs={}, feed_deadline=5.0)
        outcome = session.feed(log.events)
        assert isinstance(outcome, Completed if finished else Suspended)
        session.close()
        refs = [weakref.ref(session), weakref.ref(session._loop)]
        del session, outcome
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()


def test_suspended_keeps_the_dataclass_contract() -> None:
    """``Suspended`` writes its fields itself (hot path): the same fields, in order, with
    the same default, still frozen, compared and replaced as a dataclass."""
    params = inspect.signature(Suspended).parameters
    assert [f.name for f in dataclasses.fields(Suspended)] == list(params)
    assert [f.default for f in dataclasses.fields(Suspended)] == [
        p.default if p.default is not inspect.Parameter.empty else dataclasses.MISSING
        for p in params.values()
    ]
    s = Suspended((), (), (), (), (("step_1", ADD),), None)
    assert s == Suspended(
        hooks=(),
        steps=(),
        waits=(),
        disposals=(),
        outstanding_steps=(("step_1", ADD),),
        next_wake=None,
        patches=(),
    )
    assert dataclasses.replace(s, patches=("p",)).patches == ("p",)
    assert "outstanding_steps=(('step_1'," in repr(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.steps = ()  # type: ignore[misc]
