"""Step execution: run one attempt of a step and decide what the log records.

Two callers share this module. The orchestrator runs steps *inline*, right after
the suspension that created them, and group-commits their outcomes with whatever
the workflow does next; it calls ``attempt_step``, which runs the body and returns
the event request to write without writing it. The worker runs *queued* steps
(overflow, retries, self-healing) from step messages through
``handle_step_message``, which writes the outcome itself and wakes the workflow.

Retries: a step that raises anything but ``FatalError`` is retried up to its
``max_retries`` (default 3, so 4 attempts). A retry is recorded as
``step_retrying {error, retry_after}`` and re-run from a delayed step message
whose idempotency key is the correlation id, so that self-healing re-enqueues
(same key) never duplicate it. The first terminal event wins: an
``EntityConflictError`` on a terminal write means another attempt recorded it.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from wfkit.runtime.context import (
    StepContext,
    StepMetadata,
    WorkflowMetadata,
    current_mode,
    current_step,
)
from wfkit.runtime.engine.messages import StepMessage, workflow_message
from wfkit.runtime.errors import (
    FatalError,
    RetryableError,
    SerializationError,
    StepNotRegisteredError,
)
from wfkit.runtime.loading import registry
from wfkit.runtime.observability import reports, tracing
from wfkit.runtime.observability.logs import log_fields
from wfkit.runtime.serialization import deserialize_call, serialize, serialize_error
from wfkit.runtime.serialization.at_rest import seal, seal_error
from wfkit.worlds.base import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    EntityConflictError,
    EventRequest,
    QueueMessageRequest,
    Run,
    RunNotFoundError,
    Step,
    StepNotFoundError,
    World,
    WorldError,
    utc_now,
)

__all__ = [
    "StepMessageOutcome",
    "StepMessageResult",
    "attempt_step",
    "handle_step_message",
    "parse_retry_after",
    "retry_delay_seconds",
]

log = logging.getLogger("wfkit.executor")

DEFAULT_RETRY_SECONDS = 1.0


# --- retry delays ---------------------------------------------------------------------

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_retry_after(value: float | timedelta | str | datetime | None, now: datetime) -> datetime:
    """When a retry may run, from ``RetryableError.retry_after``.

    Args:
        value: seconds (int/float), a ``timedelta``, a duration string (``"10s"``,
            ``"500ms"``, ``"2m"``, ``"1h"``, ``"1d"``), an aware ``datetime``, or
            None for the default of one second.
        now: the reference time.

    Returns:
        The aware UTC datetime the next attempt is due.

    Raises:
        ValueError: an unreadable duration string or a naive datetime.
    """
    if value is None:
        return now + timedelta(seconds=DEFAULT_RETRY_SECONDS)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("retry_after datetime must be timezone-aware")
        return value
    if isinstance(value, timedelta):
        return now + value
    if isinstance(value, int | float):
        return now + timedelta(seconds=float(value))
    match = _DURATION.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit and unit not in _UNITS):
        raise ValueError(f"unreadable retry_after duration {value!r}")
    return now + timedelta(seconds=float(match.group(1)) * _UNITS[unit or "s"])


# --- one attempt ------------------------------------------------------------------------


_new_object = object.__new__
_set_attribute = object.__setattr__
_D = TypeVar("_D")


def _frozen(cls: type[_D], fields: dict[str, Any]) -> _D:
    """``cls(**fields)`` for a frozen dataclass without ``__post_init__``, ``fields``
    naming every field in declaration order: an equal instance with the same
    ``__dict__``, without the ``object.__setattr__`` call per field a frozen
    ``__init__`` makes (three such objects per step attempt)."""
    made = _new_object(cls)
    _set_attribute(made, "__dict__", fields)
    return made


def _workflow_metadata(run: Run, url: str) -> WorkflowMetadata:
    return _frozen(
        WorkflowMetadata,
        {
            "workflow_name": run.workflow_name,
            "workflow_run_id": run.run_id,
            "workflow_started_at": run.started_at or run.created_at,
            "url": url,
        },
    )


def _max_retries(step_name: str) -> int:
    try:
        return registry.get_step(step_name).max_retries
    except StepNotRegisteredError:
        return 0


async def attempt_step(
    run: Run, step: Step, *, world: World | None = None, url: str = "", inline: bool = True
) -> EventRequest:
    """Run one attempt of ``step`` (already ``step_started``) and say what to record.

    Nothing is written: the caller appends the returned request (the orchestrator
    group-commits it with the workflow's next events). A retry or a failure is
    logged (``wfkit.executor``) with the run and step ids; with OpenTelemetry on,
    the attempt is a ``wfkit.step`` span and counts in the step metrics.

    Args:
        run: the step's run (for workflow metadata).
        step: the step record returned by ``step_started`` (its ``attempt`` is this attempt).
        world: passed to the step context (steps that start child runs, streams).
        url: the deployment URL for workflow metadata.
        inline: run by the handler that created the step (False: from a step message).

    Returns:
        ``step_completed {result}``, ``step_failed {error}`` or
        ``step_retrying {error, retry_after}``.
    """
    with tracing.step_attempt(run, step, inline=inline) as observed:
        request, error = await _attempt(run, step, world=world, url=url)
        observed.finish(request, error)
    if error is not None:
        reports.step_attempt_failed(run, step, request, error)
    return request


async def _attempt(
    run: Run, step: Step, *, world: World | None, url: str
) -> tuple[EventRequest, Exception | None]:
    """``attempt_step`` without the observing: the request to write, and the error."""
    cid = step.step_id
    now = utc_now()
    try:
        result = await _call_step_body(run, step, world=world, url=url)
        return EventRequest(
            event_type="step_completed",
            correlation_id=cid,
            data={"result": seal(serialize(result))},
        ), None
    except SerializationError as exc:
        return _failed(cid, exc), exc
    except (FatalError, StepNotRegisteredError) as exc:
        return _failed(cid, exc), exc
    except Exception as exc:
        if step.attempt >= _max_retries(step.step_name) + 1:
            return _failed(cid, exc), exc
        try:
            retry_at = parse_retry_after(
                exc.retry_after if isinstance(exc, RetryableError) else None, now
            )
        except ValueError as bad:
            log.warning(
                "step %s of run %s: %s; retrying after the default",
                cid,
                run.run_id,
                bad,
                extra=log_fields(run.run_id, cid, step_name=step.step_name),
            )
            retry_at = parse_retry_after(None, now)
        return EventRequest(
            event_type="step_retrying",
            correlation_id=cid,
            data={"error": seal_error(serialize_error(exc)), "retry_after": retry_at.isoformat()},
        ), exc


def _failed(cid: str, exc: BaseException) -> EventRequest:
    return EventRequest(
        event_type="step_failed",
        correlation_id=cid,
        data={"error": seal_error(serialize_error(exc))},
    )


async def _call_step_body(run: Run, step: Step, *, world: World | None, url: str) -> Any:
    entry = registry.get_step(step.step_name)
    mode_token = current_mode.set("step")
    metadata = _frozen(
        StepMetadata,
        {
            "step_id": step.step_id,
            "step_name": step.step_name,
            "attempt": step.attempt,
            "step_started_at": step.started_at or step.updated_at,
        },
    )
    step_token = current_step.set(
        _frozen(
            StepContext,
            {
                "step": metadata,
                "workflow": _workflow_metadata(run, url),
                "run_id": run.run_id,
                "world": world,
            },
        )
    )
    try:
        args, kwargs, closure, this = deserialize_call(step.input or {})
        fn = entry.resolve(closure)
        value = fn(this, *args, **kwargs) if entry.method else fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value
    finally:
        current_step.reset(step_token)
        current_mode.reset(mode_token)


def retry_delay_seconds(request: EventRequest, now: datetime | None = None) -> float:
    """Seconds until a ``step_retrying`` request's ``retry_after`` (0 when past)."""
    raw = request.data.get("retry_after")
    if not isinstance(raw, str):
        return DEFAULT_RETRY_SECONDS
    due = datetime.fromisoformat(raw)
    return max(0.0, (due - (now or utc_now())).total_seconds())


# --- step messages ------------------------------------------------------------------------


StepMessageOutcome = Literal[
    "unknown",
    "run-terminal",
    "already-terminal",
    "early",
    "conflict",
    "retrying",
    "step_completed",
    "step_failed",
]
"""What became of a step message: dropped (its run or step is unknown, its run
ended), only the workflow woken (the step already ended), put back (retry not due),
lost to another attempt's terminal write, or the event the attempt recorded."""


@dataclass(frozen=True)
class StepMessageResult:
    """What the worker does with a step message: ack it, or redeliver after ``retry_in``."""

    outcome: StepMessageOutcome
    retry_in: float | None = None


async def handle_step_message(
    world: World, message: StepMessage, *, url: str = ""
) -> StepMessageResult:
    """Execute one step message.

    A terminal step only wakes its workflow (a crash between the terminal write and
    the wake-up loses nothing); a step whose retry is not yet due is redelivered
    when it is; otherwise ``step_started`` is appended and one attempt runs. A
    terminal outcome is written together with the workflow's wake-up message
    (transactional outbox); a retry asks the worker to redeliver this message
    after ``retry_after``.

    Args:
        world: where the step's run lives.
        message: the received step message.
        url: the deployment URL for workflow metadata.

    Returns:
        Whether to ack (``retry_in`` None) or nack with a delay, and what happened.

    Raises:
        WorldError: the world failed unexpectedly (the worker redelivers the message).
    """
    run_id = message.run_id
    cid = message.step_id
    try:
        run = world.runs.get(run_id)
        step = world.steps.get(run_id, cid)
    except (RunNotFoundError, StepNotFoundError):
        log.warning(
            "step message for unknown run/step %s/%s dropped",
            run_id,
            cid,
            extra=log_fields(run_id, cid),
        )
        return StepMessageResult(outcome="unknown")
    if run.status in RUN_TERMINAL:
        return StepMessageResult(outcome="run-terminal")
    wake = workflow_message(run.workflow_name, run_id, deployment_id=run.deployment_id)
    if step.status in STEP_TERMINAL:
        world.queue.enqueue(wake.queue, wake.payload)
        return StepMessageResult(outcome="already-terminal")
    now = utc_now()
    if step.status == "pending" and step.retry_after is not None and step.retry_after > now:
        return StepMessageResult(retry_in=(step.retry_after - now).total_seconds(), outcome="early")
    try:
        started = world.events.create_batch(
            run_id, [EventRequest(event_type="step_started", correlation_id=cid)]
        )[0]
    except EntityConflictError:
        return StepMessageResult(outcome="conflict")
    assert started.step is not None
    request = await attempt_step(run, started.step, world=world, url=url, inline=False)
    if request.event_type == "step_retrying":
        try:
            world.events.create_batch(run_id, [request])
        except EntityConflictError:
            return StepMessageResult(outcome="conflict")
        return StepMessageResult(retry_in=retry_delay_seconds(request), outcome="retrying")
    try:
        world.events.create_batch(run_id, [request], messages=[wake])
    except EntityConflictError:
        # Someone else recorded the terminal event first (or the run ended): still
        # make sure the workflow hears about it.
        _enqueue_quietly(world, wake)
        return StepMessageResult(outcome="conflict")
    if request.event_type == "step_completed":
        return StepMessageResult(outcome="step_completed")
    return StepMessageResult(outcome="step_failed")


def _enqueue_quietly(world: World, message: QueueMessageRequest) -> None:
    try:
        world.queue.enqueue(
            message.queue,
            message.payload,
            delay_seconds=message.delay_seconds,
            idempotency_key=message.idempotency_key,
        )
    except WorldError as exc:  # the sweep recovers a lost wake-up
        log.warning("could not enqueue %s: %s", message.queue, exc)
