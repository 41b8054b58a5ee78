"""What a replay reports: ``Suspended`` (with the calls to write), ``Completed`` or ``Failed``.

Re-exported by ``wfkit.runtime.replay.session``; the orchestrator turns these into events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from wfkit.runtime.errors import (
    CorruptedEventLogError,
    ReplayDivergenceError,
    WorkflowDeadlockError,
)
from wfkit.worlds.base import Event

__all__ = [
    "Completed",
    "Failed",
    "Outcome",
    "PendingHook",
    "PendingStep",
    "PendingWait",
    "Suspended",
    "WorkflowDeadlockError",
]


@dataclass(frozen=True)
class PendingStep:
    """A step call with no ``step_created`` in the log: write it, then run or enqueue it."""

    correlation_id: str
    step_id: str
    input: dict[str, Any]
    """Already serialized with ``serialize_call``: the ``step_created`` event's ``input``."""


@dataclass(frozen=True)
class PendingHook:
    """A hook with no ``hook_created``/``hook_conflict`` in the log: write it."""

    correlation_id: str
    token: str
    metadata: Any
    """Serialized."""
    is_webhook: bool
    respond_with: Any
    """Serialized, or None."""


@dataclass(frozen=True)
class PendingWait:
    """A durable timer with no ``wait_created`` in the log: write it."""

    correlation_id: str
    resume_at: datetime


@dataclass(frozen=True)
class Suspended:
    """The workflow is blocked on calls the log cannot answer yet.

    ``hooks``, ``steps`` and ``waits`` have no creation event yet, each in call
    order; the orchestrator writes hooks first, then steps, then waits.
    """

    hooks: tuple[PendingHook, ...]
    steps: tuple[PendingStep, ...]
    waits: tuple[PendingWait, ...]
    disposals: tuple[str, ...]
    """Hook correlation ids the workflow disposed and whose ``hook_disposed`` is not logged."""
    outstanding_steps: tuple[tuple[str, str], ...]
    """``(correlation_id, step_id)`` of steps created in the log but not terminal."""
    next_wake: datetime | None
    """The earliest ``resume_at`` among waits still active (not cancelled, not fired)."""
    patches: tuple[str, ...] = ()
    """Patch ids ``patched()`` answered True at the end of the log: write their
    ``patch_marked`` events FIRST in the next batch (before hooks, steps, waits)."""

    def __init__(
        self,
        hooks: tuple[PendingHook, ...],
        steps: tuple[PendingStep, ...],
        waits: tuple[PendingWait, ...],
        disposals: tuple[str, ...],
        outstanding_steps: tuple[tuple[str, str], ...],
        next_wake: datetime | None,
        patches: tuple[str, ...] = (),
    ) -> None:
        # The dataclass's own __init__, as one C call instead of seven
        # ``object.__setattr__`` (0.4 against 1.2 us; one per feed, on the hot path).
        # Still frozen: assigning a field raises. A test pins the fields to this list.
        self.__dict__.update(
            hooks=hooks,
            steps=steps,
            waits=waits,
            disposals=disposals,
            outstanding_steps=outstanding_steps,
            next_wake=next_wake,
            patches=patches,
        )


@dataclass(frozen=True)
class Completed:
    """The workflow function returned ``value`` (a Python value, not serialized)."""

    value: Any
    patches: tuple[str, ...] = ()
    """As ``Suspended.patches``: written before ``run_completed``."""


@dataclass(frozen=True)
class Failed:
    """The run must fail: ``code`` is ``USER_ERROR``, ``REPLAY_DIVERGENCE``,
    ``CORRUPTED_EVENT_LOG`` or ``RUNTIME_ERROR``."""

    error: BaseException
    code: str
    patches: tuple[str, ...] = ()
    """As ``Suspended.patches``: written before ``run_failed``."""


Outcome: TypeAlias = Suspended | Completed | Failed


DEADLOCK_MESSAGE = (
    "The workflow is blocked but waits on nothing durable: no step, hook or wait of "
    "its own is pending, so no event can ever resume it (is it awaiting an asyncio "
    "Event, Future or Queue that nothing will set? Only steps, hooks and sleeps "
    "resume a workflow)."
)


class ReplayFailure(Exception):
    """Internal (raised by the event dispatchers, caught by ``feed``): the log and the workflow disagree; the run fails with ``code``."""

    def __init__(self, error: BaseException, code: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.code = code


def unconsumed(event: Event) -> ReplayFailure:
    return ReplayFailure(
        CorruptedEventLogError(
            f"Unconsumed event in event log: event_type={event.event_type}, "
            f"correlation_id={event.correlation_id}, event_id={event.event_id}. "
            "This indicates a corrupted or invalid event log."
        ),
        "CORRUPTED_EVENT_LOG",
    )


def malformed(event: Event, missing: str) -> ReplayFailure:
    """A stored event without the data field its kind always carries (a damaged or
    hand-edited row): the run fails as a corrupted log, not with a ``KeyError`` raised
    into the workflow."""
    return ReplayFailure(
        CorruptedEventLogError(
            f"corrupted event log: run {event.run_id}, event {event.event_id}: "
            f"this {event.event_type} event has no {missing!r} in its data"
        ),
        "CORRUPTED_EVENT_LOG",
    )


def divergence(message: str) -> ReplayFailure:
    return ReplayFailure(ReplayDivergenceError(message), "REPLAY_DIVERGENCE")
