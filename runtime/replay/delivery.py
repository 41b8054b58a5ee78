"""Delivering a step, hook or wait event to the call it belongs to, during replay.

The session (``session.py``) dispatches each log event by kind; these functions apply
one event to its call's state and the session's call ledger: a creation is checked
against the call the code made now (``divergence.py`` words a mismatch), a result or
payload resolves the call's future, a disposal or a fired timer retires the call.
An event that no call could have received is a corrupted log (``unconsumed``).
Pure: no I/O, no clock but the loop's.
"""

from __future__ import annotations

from typing import Any, Literal, assert_never

from wfkit.runtime.errors import PayloadDecryptionError
from wfkit.runtime.replay.calls import HookCall, StepCall, WaitCall, reject_with
from wfkit.runtime.replay.divergence import (
    RunLabel,
    check_hook_created,
    check_step_created,
    check_wait_created,
)
from wfkit.runtime.replay.ledger import CallLedger
from wfkit.runtime.replay.loop import DeterministicEventLoop
from wfkit.runtime.replay.outcome import ReplayFailure, malformed, unconsumed
from wfkit.runtime.serialization import deserialize, deserialize_error
from wfkit.runtime.serialization.at_rest import open_error, open_payload
from wfkit.worlds.base import Event, parse_timestamp

__all__ = [
    "HookEventType",
    "StepEventType",
    "WaitEventType",
    "deliver_hook_event",
    "deliver_step_event",
    "deliver_wait_event",
]

StepEventType = Literal[
    "step_created", "step_started", "step_retrying", "step_completed", "step_failed"
]
HookEventType = Literal["hook_created", "hook_conflict", "hook_received", "hook_disposed"]
WaitEventType = Literal["wait_created", "wait_completed"]


def deliver_step_event(
    ledger: CallLedger, label: RunLabel, event_type: StepEventType, event: Event, call: StepCall
) -> None:
    """Apply a step event to its call: check a creation against the call, resolve a result."""
    match event_type:
        case "step_created":
            if call.created:
                raise unconsumed(event)
            data = event.data
            recorded_input = _opened(data.get("input"), event)
            if data.get("step_name") != call.step_id or recorded_input != call.input:
                # Checked inline first (every step, every replay); the check explains.
                opened = event.model_copy(update={"data": {**data, "input": recorded_input}})
                failure = check_step_created(label, call, opened)
                if failure is not None:
                    raise failure
            call.created = True
            ledger.uncreated_steps.pop(call.correlation_id, None)
            ledger.outstanding_steps[call.correlation_id] = call
        case "step_started" | "step_retrying":
            if not call.created:
                raise unconsumed(event)
        case "step_completed" | "step_failed":
            if not call.created:
                raise unconsumed(event)
            ledger.outstanding_steps.pop(call.correlation_id, None)
            del ledger.calls[call.correlation_id]  # terminal: no event may follow
            if call.future.done():
                return  # cancelled (a race's loser): consumed, not delivered
            if event_type == "step_completed":
                if "result" not in event.data:
                    raise malformed(event, "result")
                result = _opened(event.data["result"], event)
                try:
                    value = deserialize(result, path="result")
                except Exception as exc:  # an unreadable result fails the await, catchably
                    call.future.set_exception(exc)
                else:
                    call.future.set_result(value)
            else:
                if "error" not in event.data:
                    raise malformed(event, "error")
                error = _opened_error(event.data["error"], event)
                reject_with(call.future, lambda: deserialize_error(error))
        case _:
            assert_never(event_type)


def deliver_hook_event(
    ledger: CallLedger, label: RunLabel, event_type: HookEventType, event: Event, call: HookCall
) -> None:
    """Apply a hook event to its call: check a creation, deliver a payload, record a disposal."""
    match event_type:
        case "hook_created" | "hook_conflict":
            if call.created:
                raise unconsumed(event)
            failure = check_hook_created(label, call, event)
            if failure is not None:
                raise failure
            call.created = True
            ledger.uncreated_hooks.pop(call.correlation_id, None)
            token = event.data.get("token")
            if isinstance(token, str) and token:
                call.token = token  # the log is the truth, as for a wait's resume_at
            if event_type == "hook_conflict":
                call.conflicted = True
                call.conflicting_run_id = event.data.get("conflicting_run_id")
                call.reject_awaiters()
            elif call.disposed:
                ledger.disposals[call.correlation_id] = call
            else:
                ledger.live_hooks[call.correlation_id] = call
        case "hook_received":
            if not call.created or call.conflicted:
                raise unconsumed(event)
            if "payload" not in event.data:
                raise malformed(event, "payload")
            payload = _opened(event.data["payload"], event)
            try:
                item: tuple[bool, Any] = (True, deserialize(payload, path="payload"))
            except Exception as exc:
                item = (False, exc)
            call.deliver(item)
        case "hook_disposed":
            if not call.created or call.conflicted or call.dispose_recorded:
                raise unconsumed(event)
            call.dispose_recorded = True
            ledger.disposals.pop(call.correlation_id, None)
            ledger.live_hooks.pop(call.correlation_id, None)
        case _:
            assert_never(event_type)


def _opened(value: Any, event: Event) -> Any:
    """``value`` out of its at-rest envelope. A payload this worker cannot decrypt fails
    the run (``RUNTIME_ERROR``): delivered to the workflow as an exception, it could be
    caught and the run would go on without the value it was owed."""
    try:
        return open_payload(value)
    except PayloadDecryptionError as exc:
        raise _undecryptable(exc, event) from None


def _opened_error(value: Any, event: Event) -> Any:
    try:
        return open_error(value)
    except PayloadDecryptionError as exc:
        raise _undecryptable(exc, event) from None


def _undecryptable(exc: PayloadDecryptionError, event: Event) -> ReplayFailure:
    error = PayloadDecryptionError(
        f"cannot read {event.event_type} {event.correlation_id}: {exc}", key_id=exc.key_id
    )
    return ReplayFailure(error, "RUNTIME_ERROR")


def deliver_wait_event(
    ledger: CallLedger,
    label: RunLabel,
    loop: DeterministicEventLoop,
    event_type: WaitEventType,
    event: Event,
    call: WaitCall,
) -> None:
    """Apply a wait event to its call: check a creation against the call, fire the timer."""
    match event_type:
        case "wait_created":
            if call.created:
                raise unconsumed(event)
            failure = check_wait_created(label, call, event)
            if failure is not None:
                raise failure
            call.created = True
            ledger.uncreated_waits.pop(call.correlation_id, None)
            if "resume_at" in event.data:
                call.resume_at = parse_timestamp(event.data["resume_at"])
        case "wait_completed":
            if not call.created or call.fired:
                raise unconsumed(event)
            call.fired = True
            ledger.active_waits.pop(call.correlation_id, None)
            ledger.timers.pop(id(call.handle), None)
            del ledger.calls[call.correlation_id]
            loop.fire_timer(call.handle)
        case _:
            assert_never(event_type)
