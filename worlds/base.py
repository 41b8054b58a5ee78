"""The World contract: records, events, errors and one Protocol per capability.

A *world* is where wfkit keeps durable state: an append-only event log per run
(whose fold gives the runs/steps/hooks/waits records), a durable queue and
streams. The runtime imports only this module; ``worlds.create_world`` is the one
function that knows the concrete worlds.

Error tree::

    WorldError(WfkitError)
    ├── EntityConflictError        a refused transition or a duplicate creation; nothing written
    ├── RunNotFoundError
    ├── StepNotFoundError
    ├── HookNotFoundError
    ├── WaitNotFoundError
    └── SchemaVersionError         the store was written by a newer wfkit

API sketch (every method is synchronous; the runtime decides what runs off-loop)::

    world.events.create(run_id | None, EventRequest) -> EventResult
    world.events.create_batch(run_id, [EventRequest, ...], messages=[...], expected_last_event_id=None) -> [EventResult, ...]
    world.events.list(run_id, after_event_id=None, limit=None) -> [Event, ...]
    world.runs.get(run_id) / list(status=None, workflow_name=None, limit=100)
    world.steps.get(run_id, step_id) / list(run_id)
    world.hooks.get(hook_id) / get_by_token(token) / list(run_id=None)
    world.waits.get(run_id, wait_id) / list(run_id)
    world.queue.enqueue(queue, payload, delay=0, idempotency_key=None) -> message_id
    world.queue.receive(prefixes, lease_seconds, max_messages=1, wait_seconds=0) -> [QueueMessage, ...]
    world.queue.ack(message_id) / nack(message_id, delay=0) / extend_lease(message_id, lease_seconds)
    world.queue.live_run_ids() / delete_messages(run_id)
    world.streams.append(run_id, name, data) -> index / close(run_id, name)
    world.streams.read(run_id, name, start_index=0, limit=None) -> StreamPage
    world.streams.wait(run_id, name, after_index, timeout) -> None
    world.streams.list(run_id) -> [name, ...]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = 2

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed"]
HookStatus = Literal["active", "disposed", "conflicted"]
WaitStatus = Literal["waiting", "completed"]

EventType = Literal[
    "run_created",
    "run_started",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "step_created",
    "step_started",
    "step_retrying",
    "step_completed",
    "step_failed",
    "hook_created",
    "hook_conflict",
    "hook_received",
    "hook_disposed",
    "wait_created",
    "wait_completed",
]

RUN_TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
STEP_TERMINAL: frozenset[str] = frozenset({"completed", "failed"})


class WfkitError(Exception):
    """Base of every error wfkit raises to users."""


class WorldError(WfkitError):
    """Something a world refused or could not find."""


class EntityConflictError(WorldError):
    """A transition the lifecycle table does not allow, or a duplicate creation event.

    Nothing was written."""


class RunNotFoundError(WorldError):
    pass


class StepNotFoundError(WorldError):
    pass


class HookNotFoundError(WorldError):
    pass


class WaitNotFoundError(WorldError):
    pass


class SchemaVersionError(WorldError):
    pass


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Run(_Record):
    run_id: str
    workflow_name: str
    status: RunStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    deployment_id: str = ""
    execution_context: dict[str, Any] = Field(default_factory=dict)
    spec_version: int = SPEC_VERSION
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None


class Step(_Record):
    run_id: str
    step_id: str
    step_name: str
    status: StepStatus
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempt: int = 0
    retry_after: datetime | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None


class Hook(_Record):
    run_id: str
    hook_id: str
    token: str
    status: HookStatus
    metadata: Any = None
    is_webhook: bool = False
    respond_with: Any = None
    created_at: datetime
    updated_at: datetime


class Wait(_Record):
    run_id: str
    wait_id: str
    status: WaitStatus
    resume_at: datetime
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class Event(_Record):
    event_id: str
    run_id: str
    event_type: EventType
    correlation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    spec_version: int = SPEC_VERSION


class EventRequest(_Record):
    event_type: EventType
    correlation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    """When the caller already showed this event to a live replay, the time it used;
    the world stores it instead of its own clock (None: the world's now)."""


class EventResult(_Record):
    event: Event
    run: Run | None = None
    step: Step | None = None
    hook: Hook | None = None
    wait: Wait | None = None


class QueueMessageRequest(_Record):
    queue: str
    payload: dict[str, Any]
    delay_seconds: float = 0.0
    idempotency_key: str | None = None


class QueueMessage(_Record):
    message_id: str
    queue: str
    payload: dict[str, Any]
    attempt: int
    idempotency_key: str | None = None
    run_id: str | None = None
    created_at: datetime
    visible_at: datetime


class StreamPage(_Record):
    chunks: list[bytes]
    next_index: int
    closed: bool


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

    def ack(self, message_id: str) -> None: ...

    def nack(self, message_id: str, *, delay_seconds: float = 0.0) -> None: ...

    def extend_lease(self, message_id: str, *, lease_seconds: float) -> None: ...

    def live_run_ids(self) -> set[str]:
        """Run ids that have at least one message not yet acked."""
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

    def close(self) -> None: ...
