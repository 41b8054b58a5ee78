"""A run's deadline (``start(..., deadline=…)``).

The deadline is stored with the run (``run_created``'s ``deadline_at``) and a
workflow message delayed until it is written with ``run_created``, so the run is
woken at its deadline whichever worker holds it, after any restart. Whichever
worker handles a message of a run past its deadline fails it with
``RUN_DEADLINE_EXCEEDED``; the world then releases its hooks and waits (a
terminal run holds none), and inline steps still running for it are cancelled.
A step running in another worker finishes, but its outcome is refused: the run
has ended.

Alternatives rejected: a timer thread per worker over every run with a deadline
(a scan of all runs on every tick, and nothing fires while no worker runs); a
wait in the workflow's own log (the deadline must hold while a step runs, when the
workflow is not being replayed).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.errors import RunDeadlineExceededError
from wfkit.runtime.serialization import serialize_error
from wfkit.worlds.base import (
    EntityConflictError,
    EventRequest,
    QueueMessageRequest,
    Run,
    World,
    WorldError,
    utc_now,
)

__all__ = [
    "RUN_DEADLINE_EXCEEDED",
    "deadline_error",
    "deadline_instant",
    "deadline_messages",
    "deadline_passed",
    "ensure_deadline_backup",
    "fail_queued_run_past_deadline",
]

log = logging.getLogger("wfkit.flow")

RUN_DEADLINE_EXCEEDED = "RUN_DEADLINE_EXCEEDED"
"""The ``error_code`` of a run failed by its deadline."""

_BACKUP_WINDOW = timedelta(seconds=5)
"""How near the deadline a handled run gets a second wake-up: a message delivered a
little early (a database clock ahead of the worker's) must not be the last one."""


def deadline_instant(deadline: str | timedelta | datetime | None) -> datetime | None:
    """When a run's deadline falls: ``deadline`` from now (a ``timedelta``, or a
    duration string as ``sleep`` reads it: ``"30m"``, ``"1d"``), or the aware
    ``datetime`` itself.

    Raises:
        ValueError: a naive datetime, a negative duration or a malformed string.
        TypeError: none of those.
    """
    if deadline is None:
        return None
    if isinstance(deadline, str):
        from wfkit.runtime.api.workflow import parse_duration  # api imports this module

        try:
            deadline = parse_duration(deadline)
        except ValueError as exc:
            raise ValueError(f"deadline={deadline!r}: {exc}") from None
    if isinstance(deadline, timedelta):
        if deadline < timedelta(0):
            raise ValueError(f"deadline={deadline!r}: a timedelta deadline must not be negative")
        return utc_now() + deadline
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None:
            raise ValueError(
                f"deadline={deadline!r} is naive: pass an aware datetime (e.g. tzinfo=UTC)"
            )
        return deadline
    raise TypeError(
        f"deadline={deadline!r}: expected a duration string, a timedelta or an aware datetime, "
        f"got {type(deadline).__name__}"
    )


def deadline_messages(
    workflow_name: str, run_id: str, deployment_id: str, at: datetime, *, backup: bool = False
) -> QueueMessageRequest:
    """The workflow message that wakes the run at its deadline (``backup``: the
    second one a worker leaves for a deadline that is near)."""
    delay = (at - utc_now()).total_seconds() + (0.05 if backup else 0.0)
    key = f"deadline:{run_id}:backup" if backup else f"deadline:{run_id}"
    return workflow_message(
        workflow_name, run_id, deployment_id=deployment_id, delay_seconds=delay, idempotency_key=key
    )


def deadline_passed(run: Run) -> bool:
    """Whether the run has a deadline and it has passed."""
    return run.deadline_at is not None and utc_now() >= run.deadline_at


def deadline_near(run: Run) -> bool:
    """Whether the run's deadline is still ahead but within a few seconds."""
    return run.deadline_at is not None and run.deadline_at - utc_now() <= _BACKUP_WINDOW


def deadline_error(run: Run) -> RunDeadlineExceededError:
    """The failure a run past its deadline ends with."""
    at = run.deadline_at.isoformat() if run.deadline_at is not None else "?"
    return RunDeadlineExceededError(f"run {run.run_id} did not finish by its deadline ({at})")


def fail_queued_run_past_deadline(world: World, run_id: str) -> bool:
    """Fail a run still waiting in its named queue once its deadline passed (it is
    admitted and failed in one transaction, as no worker ever ran it); whether it was.
    """
    try:
        run = world.runs.get(run_id)
    except WorldError:
        return False
    if run.status != "pending" or run.queue_name is None or not deadline_passed(run):
        return False
    error = deadline_error(run)
    try:
        world.events.create_batch(
            run_id,
            [
                EventRequest(event_type="run_started", data={"admitted_by": "deadline"}),
                EventRequest(
                    event_type="run_failed",
                    data={"error": serialize_error(error), "error_code": RUN_DEADLINE_EXCEEDED},
                ),
            ],
        )
    except EntityConflictError:
        return False
    return True


def ensure_deadline_backup(world: World, run: Run) -> None:
    """A run whose deadline is near gets a second wake-up just after it, in case the
    first was delivered early (a database clock ahead of this worker's)."""
    if run.deadline_at is None or run.status in ("completed", "failed", "cancelled"):
        return
    if not deadline_near(run):
        return
    message = deadline_messages(
        run.workflow_name, run.run_id, run.deployment_id, run.deadline_at, backup=True
    )
    try:
        world.queue.enqueue(
            message.queue,
            message.payload,
            delay_seconds=message.delay_seconds,
            idempotency_key=message.idempotency_key,
        )
    except WorldError as exc:  # the first wake-up, or the sweep, still comes
        log.warning("deadline wake-up of run %s not enqueued: %s", run.run_id, exc)
