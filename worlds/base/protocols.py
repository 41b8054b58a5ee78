"""One ``Protocol`` per world capability (events, runs, steps, hooks, waits, queue,
streams), combined into ``World``."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from wfkit.worlds.base.batches import BatchOutcome, BatchWrite
from wfkit.worlds.base.records import (
    Event,
    EventRequest,
    EventResult,
    Hook,
    QueueMessage,
    QueueMessageRequest,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    Step,
    StreamPage,
    Wait,
)


@runtime_checkable
class Events(Protocol):
    def create(self, run_id: str | None, request: EventRequest) -> EventResult:
        """Append one event and update its materialized record in one transaction.

        ``run_id`` is None only for ``run_created`` without a caller-chosen id;
        a caller-chosen ``run_id`` that exists raises EntityConflictError."""
        ...

    def create_batch(
        self,
        run_id: str,
        requests: Sequence[EventRequest],
        *,
        messages: Sequence[QueueMessageRequest] = (),
        expected_last_event_id: str | None = None,
    ) -> list[EventResult]:
        """Append several events of one run (and enqueue ``messages``) atomically.

        All or nothing: one refused transition raises and writes nothing. With
        ``expected_last_event_id``, the batch is refused (EntityConflictError) unless
        that is the run's last event: optimistic concurrency for a worker that fed
        events to a live replay before writing them."""
        ...

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Group commit: several runs' ``create_batch`` calls in one transaction
        (``wfkit.worlds.base.batches``).

        Answers one slot per write, in order: its results, or the WorldError that
        refused it (that write wrote nothing; the others are unaffected). Every
        write answered with results is durable on return."""
        ...

    def list(
        self, run_id: str, *, after_event_id: str | None = None, limit: int | None = None
    ) -> list[Event]: ...


@runtime_checkable
class Runs(Protocol):
    def get(self, run_id: str) -> Run: ...

    def list(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
    ) -> list[Run]: ...

    def get_by_idempotency_key(self, idempotency_key: str) -> Run:
        """The run started with ``idempotency_key``; RunNotFoundError when none was."""
        ...

    def list_queued(
        self,
        queue_name: str,
        *,
        status: RunStatus | None = None,
        started_after: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[Run]:
        """Runs of a named queue in admission order (``queue_priority``, then run id),
        filtered by ``status`` and by ``started_at >= started_after`` when given."""
        ...


@runtime_checkable
class Schedules(Protocol):
    """Cron schedules: world-level configuration (what to start, and how far it has
    fired), not an event log: each tick's run carries its own idempotency key."""

    def put(self, schedule: Schedule) -> Schedule:
        """Create the schedule, or replace its definition (workflow, cron, input,
        missed-tick policy) keeping its status and how far it has fired."""
        ...

    def get(self, schedule_id: str) -> Schedule:
        """The schedule; ScheduleNotFoundError when there is none."""
        ...

    def list(self) -> list[Schedule]:
        """Every schedule, by id."""
        ...

    def set_status(self, schedule_id: str, status: ScheduleStatus) -> Schedule:
        """Pause or resume; ScheduleNotFoundError when there is none."""
        ...

    def delete(self, schedule_id: str) -> None:
        """Remove the schedule; ScheduleNotFoundError when there is none."""
        ...

    def advance(self, schedule_id: str, tick: datetime) -> bool:
        """Record that the schedule fired up to ``tick``; False (nothing changed)
        when it had already fired that far."""
        ...


@runtime_checkable
class Steps(Protocol):
    def get(self, run_id: str, step_id: str) -> Step: ...

    def list(self, run_id: str) -> list[Step]: ...


@runtime_checkable
class Hooks(Protocol):
    def get(self, hook_id: str) -> Hook: ...

    def get_by_token(self, token: str) -> Hook:
        """The *active* hook holding ``token``; HookNotFoundError otherwise."""
        ...

    def list(self, *, run_id: str | None = None) -> list[Hook]: ...


@runtime_checkable
class Waits(Protocol):
    def get(self, run_id: str, wait_id: str) -> Wait: ...

    def list(self, run_id: str) -> list[Wait]: ...


@runtime_checkable
class Queue(Protocol):
    def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any],
        *,
        delay_seconds: float = 0.0,
        idempotency_key: str | None = None,
    ) -> str:
        """Add a message; with a key that a not-yet-acked message holds, a no-op
        returning that message's id."""
        ...

    def receive(
        self,
        prefixes: Sequence[str],
        *,
        lease_seconds: float,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
    ) -> list[QueueMessage]:
        """Lease up to ``max_messages`` visible messages whose queue starts with a
        prefix; block up to ``wait_seconds`` for one to appear."""
        ...

    def ack(self, message_id: str, *, attempt: int | None = None) -> None:
        """Delete the message. With ``attempt`` (the lease token: the attempt number
        ``receive`` returned), only while that lease is current: a worker that stalled
        past its lease must not delete the copy redelivered to another worker.

        The delete may be written after the call returns (the local world writes it
        with its next write transaction): this world never returns the message
        again, and if the process ends first the message is redelivered when its
        lease ends, as it would be had the process ended before ``ack``."""
        ...

    def nack(
        self, message_id: str, *, delay_seconds: float = 0.0, attempt: int | None = None
    ) -> None:
        """Make the message visible again after ``delay_seconds`` (with ``attempt``:
        only while that lease is current)."""
        ...

    def extend_lease(
        self, message_id: str, *, lease_seconds: float, attempt: int | None = None
    ) -> None:
        """Keep the message invisible for ``lease_seconds`` more (with ``attempt``:
        only while that lease is current)."""
        ...

    def live_run_ids(self) -> set[str]:
        """Run ids that have at least one message not yet acked."""
        ...

    def queue_names(self, prefix: str) -> set[str]:
        """The names of the queues starting with ``prefix`` that hold a message not
        yet acked (visible or leased)."""
        ...

    def delete_messages(self, run_id: str) -> int:
        """Drop every message of a run (fault tests; the sweep recovers)."""
        ...


@runtime_checkable
class Streams(Protocol):
    def append(self, run_id: str, name: str, data: bytes) -> int: ...

    def close(self, run_id: str, name: str) -> None: ...

    def read(
        self, run_id: str, name: str, *, start_index: int = 0, limit: int | None = None
    ) -> StreamPage: ...

    def wait(self, run_id: str, name: str, *, after_index: int, timeout: float) -> None:
        """Block until the stream has a chunk at ``after_index`` or is closed, or
        ``timeout`` passes."""
        ...

    def list(self, run_id: str) -> list[str]: ...


@runtime_checkable
class World(Protocol):
    name: str
    events: Events
    runs: Runs
    steps: Steps
    hooks: Hooks
    waits: Waits
    queue: Queue
    streams: Streams
    schedules: Schedules

    def close(self) -> None: ...
