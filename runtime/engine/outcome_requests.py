"""What a replay outcome asks the log for, as ``EventRequest``s (no I/O).

The orchestrator decides when to write and writes; these functions say what:
``patch_marked`` for the patches ``patched()`` took at the end of the log (first in
any batch), ``run_completed``/``run_failed`` for a run that ended, ``hook_created`` (or
``hook_disposed``) for a suspension's hooks, ``step_created`` and
``wait_created`` for its steps and waits (ARCHITECTURE.md §2 has each event's
data), and the provisional events a live session is shown before the requests
they copy are written.
"""

from __future__ import annotations

from collections.abc import Sequence

from wfkit.runtime.errors import SerializationError
from wfkit.runtime.replay.outcome import Completed, Failed, PendingStep, PendingWait, Suspended
from wfkit.runtime.serialization import serialize, serialize_error
from wfkit.runtime.serialization.at_rest import seal, seal_error
from wfkit.worlds.base import (
    SPEC_VERSION,
    Event,
    EventRequest,
    new_id,
    normalize_json,
    utc_now,
)

__all__ = [
    "hook_requests",
    "patch_requests",
    "provisional_events",
    "run_ending_request",
    "step_created_request",
    "wait_created_request",
]


def run_ending_request(ending: Completed | Failed) -> EventRequest:
    """``run_completed`` with the serialized result, or ``run_failed`` with the error.

    A result that cannot be serialized fails the run (``USER_ERROR``) instead.
    """
    if isinstance(ending, Completed):
        try:
            return EventRequest(
                event_type="run_completed", data={"output": seal(serialize(ending.value))}
            )
        except SerializationError as exc:
            return EventRequest(
                event_type="run_failed",
                data={"error": seal_error(serialize_error(exc)), "error_code": "USER_ERROR"},
            )
    return EventRequest(
        event_type="run_failed",
        data={"error": seal_error(serialize_error(ending.error)), "error_code": ending.code},
    )


def patch_requests(patches: Sequence[str]) -> list[EventRequest]:
    """``patch_marked`` for each patch ``patched()`` answered True at the end of the log:
    written first in the next batch, so a replay finds them right after the event
    the call followed (``wfkit.runtime.replay.session``)."""
    return [EventRequest(event_type="patch_marked", data={"patch_id": p}) for p in patches]


def hook_requests(suspended: Suspended) -> list[EventRequest]:
    """``hook_created`` for each pending hook; with none pending, ``hook_disposed``
    for each disposal (creations go first: their events are fed back before the
    session is asked again)."""
    requests = [
        EventRequest(
            event_type="hook_created",
            correlation_id=hook.correlation_id,
            data={
                "token": hook.token,
                "metadata": seal(hook.metadata),
                "is_webhook": bool(hook.is_webhook),
                "respond_with": hook.respond_with,
            },
        )
        for hook in suspended.hooks
    ]
    if not requests:
        requests = [
            EventRequest(event_type="hook_disposed", correlation_id=correlation_id)
            for correlation_id in suspended.disposals
        ]
    return requests


def step_created_request(step: PendingStep) -> EventRequest:
    """``step_created`` for a step call the log has not seen."""
    return EventRequest(
        event_type="step_created",
        correlation_id=step.correlation_id,
        data={"step_name": step.step_id, "input": seal(step.input)},
    )


def wait_created_request(wait: PendingWait) -> EventRequest:
    """``wait_created`` for a durable timer the log has not seen."""
    return EventRequest(
        event_type="wait_created",
        correlation_id=wait.correlation_id,
        data={"resume_at": wait.resume_at.isoformat()},
    )


def provisional_events(
    run_id: str, requests: Sequence[EventRequest]
) -> tuple[list[EventRequest], list[Event]]:
    """Events to show a live session before ``requests`` are written.

    Args:
        run_id: the run the requests belong to.
        requests: outcomes to be appended later.

    Returns:
        The requests stamped with one time (the world stores it, so the log says
        what the session saw), and the matching events (ids made up here, never stored).
    """
    now = utc_now()
    # Validated construction: pydantic-core checks these few fields faster than
    # ``model_construct`` copies them in Python (1.9 µs against 4.9 µs an event).
    stamped = [
        EventRequest(
            event_type=r.event_type,
            correlation_id=r.correlation_id,
            data=r.data,
            created_at=now,
        )
        for r in requests
    ]
    events = [
        Event(
            event_id=new_id("evnt"),
            run_id=run_id,
            event_type=r.event_type,
            correlation_id=r.correlation_id,
            data=normalize_json(r.data),
            created_at=now,
            spec_version=SPEC_VERSION,
        )
        for r in stamped
    ]
    return stamped, events
