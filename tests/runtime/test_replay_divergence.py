"""A log replayed against changed code fails with REPLAY_DIVERGENCE naming both sides.

Each test records a log with one version of a workflow (the simulated orchestrator
plays it), then replays that log against another version, as a worker does after a
deploy. The failure must name the user's line, what the log records there and what
the code now does; a log no code could have written is still a corrupted log.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from replay_log import RUN_ID, START, Log, Simulator, full_replay

from wfkit.runtime import gen
from wfkit.runtime.api.workflow import create_hook, sleep
from wfkit.runtime.errors import CorruptedEventLogError, ReplayDivergenceError
from wfkit.runtime.replay.session import Completed, Failed, Outcome
from wfkit.runtime.serialization import serialize

ADD = "step//./t//add"
CHARGE = "step//./t//charge"
add = gen.step_proxy(ADD, "add")
charge = gen.step_proxy(CHARGE, "charge")
STEPS: dict[str, Callable[..., Any]] = {ADD: lambda a, b=0: a + b, CHARGE: lambda *a, **k: "ok"}
HERE = os.path.relpath(__file__)
PREFIX = f"replay divergence in workflow wf (run {RUN_ID}): the code changed since the run "
PREFIX += "started (or is not deterministic): "


def line_of(fn: Callable[..., Any], text: str) -> int:
    """The line in this file where ``fn``'s source contains ``text``."""
    import inspect

    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def recorded_with(workflow: Callable[..., Any], **options: Any) -> Any:
    """The log of a run of ``workflow`` played to its end."""
    steps = {**STEPS, **options.pop("steps", {})}
    sim = Simulator(workflow, steps=steps, **options)
    assert isinstance(sim.play(), Completed)
    return sim.log.events


def diverged(outcome: Outcome) -> ReplayDivergenceError:
    assert isinstance(outcome, Failed), outcome
    assert outcome.code == "REPLAY_DIVERGENCE", outcome
    assert isinstance(outcome.error, ReplayDivergenceError)
    return outcome.error


# --- arguments ------------------------------------------------------------------------------


async def v1_charge() -> str:
    return str(await charge("order-1", 1999, currency="EUR"))


async def v2_other_amount() -> str:
    return str(await charge("order-1", 2999, currency="EUR"))


async def v2_other_keyword() -> str:
    return str(await charge("order-1", 1999, currency="USD"))


async def v2_extra_argument() -> str:
    return str(await charge("order-1", 1999, True, currency="EUR"))


def test_a_step_called_with_other_arguments_diverges_at_its_line() -> None:
    error = diverged(full_replay(v2_other_amount, recorded_with(v1_charge)))
    site = f"{HERE}:{line_of(v2_other_amount, 'charge(')}"
    assert str(error) == (
        f"{site}: {PREFIX}the log records step charge('order-1', 1999, currency='EUR') "
        "here, the code now calls step charge('order-1', 2999, currency='EUR') "
        "(args[1] differs)"
    )
    assert (error.site, error.recorded) == (site, "step charge('order-1', 1999, currency='EUR')")


def test_a_changed_keyword_argument_is_named() -> None:
    error = diverged(full_replay(v2_other_keyword, recorded_with(v1_charge)))
    assert str(error).endswith("(kwargs['currency'] differs)")


def test_an_added_argument_is_counted() -> None:
    error = diverged(full_replay(v2_extra_argument, recorded_with(v1_charge)))
    assert str(error).endswith("(2 positional arguments recorded, 3 now)")


def test_closure_values_of_a_nested_step_are_checked() -> None:
    def nested(limit: int) -> Callable[[], Any]:
        inner = gen.step_proxy("step//./t//wf/inner", "wf/inner", lambda: {"limit": limit})

        async def wf() -> Any:
            return await inner()

        return wf

    events = recorded_with(nested(5), steps={"step//./t//wf/inner": lambda: 1})
    assert full_replay(nested(5), events) == Completed(1)
    error = diverged(full_replay(nested(6), events))
    assert str(error).endswith("the code now calls step wf/inner() (closure['limit'] differs)")


def test_the_same_arguments_replay() -> None:
    assert full_replay(v1_charge, recorded_with(v1_charge)) == Completed("ok")


# --- code that makes other calls (issue 9: a step added before a sleep) -------------------


async def v1_sleep_then_add() -> int:
    await sleep(10)
    return int(await add(1, 2))


async def v2_add_before_sleep() -> int:
    await add(0, 0)
    await sleep(10)
    return int(await add(1, 2))


def test_a_step_added_before_a_sleep_is_a_code_change_not_a_corrupted_log() -> None:
    error = diverged(full_replay(v2_add_before_sleep, recorded_with(v1_sleep_then_add)))
    site = f"{HERE}:{line_of(v2_add_before_sleep, 'add(0, 0)')}"
    resume_at = (START + timedelta(seconds=10)).isoformat()
    assert str(error) == (
        f"{site}: {PREFIX}the log records a durable wait until {resume_at} here, the code now "
        "calls step add(0, 0)"
    )


async def v1_add_then_sleep() -> int:
    total = int(await add(1, 2))
    await sleep(10)
    return total


async def v2_sleep_only() -> int:
    await sleep(10)
    return 0


def test_a_removed_step_names_the_sleep_that_took_its_place() -> None:
    error = diverged(full_replay(v2_sleep_only, recorded_with(v1_add_then_sleep)))
    site = f"{HERE}:{line_of(v2_sleep_only, 'sleep(10)')}"
    assert str(error) == (
        f"{site}: {PREFIX}the log records step add(1, 2) here, the code now waits 10 s "
        f"(until {(START + timedelta(seconds=10)).isoformat()})"
    )


async def v1_two_steps() -> int:
    first = await add(1, 2)
    return int(await add(first, 3))


async def v2_one_step() -> int:
    return int(await add(1, 2))


def test_a_workflow_that_now_returns_earlier_says_so() -> None:
    error = diverged(full_replay(v2_one_step, recorded_with(v1_two_steps)))
    site = f"{HERE}:{line_of(v2_one_step, 'add(1, 2)')}"
    assert str(error) == (
        f"{site}: {PREFIX}the log records step add(3, 3) here, the code now returns after "
        "step add(1, 2)"
    )


async def v2_renamed_step() -> int:
    first = await add(1, 2)
    return int(await charge(first, 3))


def test_a_renamed_step_names_both() -> None:
    error = diverged(full_replay(v2_renamed_step, recorded_with(v1_two_steps)))
    assert str(error).endswith(
        "the log records step add(3, 3) here, the code now calls step charge(3, 3)"
    )


# --- sleeps and hooks -------------------------------------------------------------------------


async def v2_longer_sleep() -> int:
    await sleep(20)
    return int(await add(1, 2))


def test_a_changed_sleep_duration_diverges() -> None:
    error = diverged(full_replay(v2_longer_sleep, recorded_with(v1_sleep_then_add)))
    site = f"{HERE}:{line_of(v2_longer_sleep, 'sleep(20)')}"
    assert str(error) == (
        f"{site}: {PREFIX}the log records a durable wait of 10 s "
        f"(until {(START + timedelta(seconds=10)).isoformat()}) here, the code now waits 20 s "
        f"(until {(START + timedelta(seconds=20)).isoformat()})"
    )


async def v1_asyncio_sleep() -> str:
    await asyncio.sleep(5)
    return "ok"


async def v2_asyncio_sleep() -> str:
    await asyncio.sleep(6)
    return "ok"


def test_a_changed_asyncio_sleep_is_found_at_its_line() -> None:
    error = diverged(full_replay(v2_asyncio_sleep, recorded_with(v1_asyncio_sleep)))
    assert error.site == f"{HERE}:{line_of(v2_asyncio_sleep, 'asyncio.sleep(6)')}"
    assert "a durable wait of 5 s" in str(error) and "waits 6 s" in str(error)


async def v1_hook() -> Any:
    return await create_hook(token="approve:1")


async def v2_hook() -> Any:
    return await create_hook(token="approve:2")


def test_a_changed_hook_token_diverges() -> None:
    events = recorded_with(v1_hook, hook_payloads=[(1.0, "approve:1", {"ok": True})])
    assert full_replay(v1_hook, events) == Completed({"ok": True})
    error = diverged(full_replay(v2_hook, events))
    site = f"{HERE}:{line_of(v2_hook, 'create_hook(')}"
    assert str(error) == (
        f"{site}: {PREFIX}the log records a hook with token 'approve:1' here, the code now "
        "creates a hook with token 'approve:2'"
    )


def test_a_default_hook_token_is_whatever_the_log_recorded() -> None:
    """A token the workflow did not choose is not checked (a default may be generated
    differently by another version): the recorded one wins."""

    async def wf() -> Any:
        hook = create_hook()
        payload = await hook
        return [hook.token, payload]

    log = Log()
    first = full_replay(wf, log.events)
    assert not isinstance(first, Completed | Failed)
    (pending,) = first.hooks
    assert pending.token != "recorded-token"
    log.add("hook_created", pending.correlation_id, {"token": "recorded-token", "metadata": None})
    log.add("hook_received", pending.correlation_id, {"payload": serialize("p")})
    assert full_replay(wf, log.events) == Completed(["recorded-token", "p"])


# --- still a corrupted log --------------------------------------------------------------------


def test_an_event_for_an_id_this_run_never_makes_is_a_corrupted_log() -> None:
    events = list(recorded_with(v1_two_steps))
    bogus = events[-1].model_copy(
        update={"event_id": "evnt_bogus", "correlation_id": "step_7ZZZZZZZZZZZZZZZZZZZZZZZZZ"}
    )
    outcome = full_replay(v1_two_steps, [*events[:3], bogus, *events[3:]])
    assert isinstance(outcome, Failed) and outcome.code == "CORRUPTED_EVENT_LOG"
    assert isinstance(outcome.error, CorruptedEventLogError)


def test_a_repeated_terminal_event_is_a_corrupted_log() -> None:
    events = list(recorded_with(v1_two_steps))
    completed = next(e for e in events if e.event_type == "step_completed")
    again = completed.model_copy(update={"event_id": "evnt_again"})
    outcome = full_replay(v1_two_steps, [*events, again])
    assert isinstance(outcome, Failed) and outcome.code == "CORRUPTED_EVENT_LOG"


def test_an_exception_argument_whose_traceback_text_differs_is_the_same_call() -> None:
    """Tracebacks name files by absolute path: another machine replays the same call."""

    async def wf() -> Any:
        try:
            raise ValueError("bad input")
        except ValueError as exc:
            return await charge(exc)

    events = list(recorded_with(wf))
    created = next(e for e in events if e.event_type == "step_created")
    (recorded,) = created.data["input"]["args"]
    assert "stack" in recorded  # the traceback text travels with the exception
    moved = {**recorded, "stack": recorded["stack"].replace(__file__, "/elsewhere/test.py")}
    assert moved["stack"] != recorded["stack"]
    data = {**created.data, "input": {**created.data["input"], "args": [moved]}}
    events[events.index(created)] = created.model_copy(update={"data": data})
    assert full_replay(wf, events) == Completed("ok")
