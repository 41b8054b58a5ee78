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
    ├── SchemaVersionError         the store was written by a newer wfkit
    ├── InvalidEventError          a malformed event request (also a ValueError)
    └── CorruptedLogError          a stored log the lifecycle rules cannot fold

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

Shared lifecycle rules (the second half of this module; every world uses them,
so the worlds cannot disagree on what a transition means)::

    plan_events(loader, run_id, requests, now=None, expected_last_event_id=None) -> PlannedWrites
        check requests against the lifecycle table, reading current records
        through a RecordLoader inside the world's transaction; the world then
        writes PlannedWrites (events, new/changed records, released runs)
    fold_events(events) -> FoldedState          the records a log gives
    diff_run_records(world, run_id) -> [str]    fold vs materialized records (wfkit verify)
    StateLoader(FoldedState)                    an in-memory RecordLoader (fold, MemoryWorld)
    new_id("evnt") / utc_now() / parse_timestamp(s) / encode_json(data)
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


# ---------------------------------------------------------------------------
# Shared, pure lifecycle rules.
#
# Every world validates transitions with the code below, so they cannot drift
# apart: a world loads the few records an event touches through a
# ``RecordLoader`` (inside its write transaction), ``plan_events`` checks the
# lifecycle table and returns the records to write, and the world writes them.
# ``fold_events`` replays a whole log through the same rules; ``wfkit verify``
# compares that fold with the materialized records (``diff_run_records``).
# ---------------------------------------------------------------------------


class InvalidEventError(WorldError, ValueError):
    """An event request that is malformed (a missing correlation id or data field).

    Nothing was written."""


class CorruptedLogError(WorldError):
    """A stored event log that the lifecycle rules cannot fold."""


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 130 bits (2 zero + 48 time + 80 random) as 13 groups of 10 bits, two characters each.
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_RANDOM_BITS = 80
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
# Ids are unique, not secret: a seeded PRNG avoids a getrandom() syscall per id.
_RANDOM = random.Random(secrets.randbits(128))


class MonotonicUlids:
    """A ULID factory whose output sorts in creation order within one process.

    Two ids made in the same millisecond share the timestamp and increment the
    random part, so string order equals creation order (the ULID spec's
    monotonic mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next(self) -> str:
        """Return a new 26-character Crockford base32 ULID."""
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            if now_ms <= self._last_ms:
                now_ms = self._last_ms
                rand = self._last_random + 1
                if rand > _RANDOM_MASK:
                    now_ms += 1
                    rand = _RANDOM.getrandbits(_RANDOM_BITS - 1)
            else:
                # One bit of headroom so increments within a millisecond never overflow.
                rand = _RANDOM.getrandbits(_RANDOM_BITS - 1)
            self._last_ms = now_ms
            self._last_random = rand
        value = (now_ms << _RANDOM_BITS) | rand
        return "".join([_CROCKFORD_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


_ULIDS = MonotonicUlids()


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<ULID>`` (``new_id("evnt")`` → ``evnt_01J…``), monotonic per process."""
    return f"{prefix}_{_ULIDS.next()}"


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 string (or pass through a datetime) into an aware UTC datetime.

    Raises:
        InvalidEventError: ``value`` is neither.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(
                value.replace("Z", "+00:00") if value.endswith("Z") else value
            )
        except ValueError as exc:
            raise InvalidEventError(f"not an ISO 8601 timestamp: {value!r}") from exc
    else:
        raise InvalidEventError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def encode_json(data: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Encode ``data`` as a durable world stores it: the compact JSON text
    (ASCII-only, so NUL is escaped) and the value read back from it.

    Raises:
        InvalidEventError: ``data`` is not JSON-serializable.
    """
    if not data:
        return {}, "{}"
    try:
        text = json.dumps(data, separators=(",", ":"))
        result: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"event data is not JSON-serializable: {exc}") from exc
    return result, text


def normalize_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip ``data`` through JSON, as a durable world stores it.

    Raises:
        InvalidEventError: ``data`` is not JSON-serializable.
    """
    return encode_json(data)[0]


class RecordLoader(Protocol):
    """Read access to the current records, as a world sees them inside its write
    transaction. SQL worlds that allow concurrent writers should lock the rows they
    return (``SELECT … FOR UPDATE``) so that the check and the write are atomic.

    Optional fast path: a loader may also define ``load_run_status(run_id) ->
    RunStatus | None``; step, hook and wait events then read only the run's
    status instead of decoding the whole run."""

    def load_run(self, run_id: str) -> Run | None: ...

    def load_step(self, run_id: str, step_id: str) -> Step | None: ...

    def load_hook(self, hook_id: str) -> Hook | None: ...

    def load_active_hook_by_token(self, token: str) -> Hook | None: ...

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None: ...

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None: ...

    def load_last_event_id(self, run_id: str) -> str | None: ...


@dataclass
class PlannedWrites:
    """What a world must write, in one transaction, to apply some event requests.

    ``events`` are appended in order. ``new_*`` are records to insert (creation),
    ``changed_*`` records to update by primary key; a record created and then
    changed in the same batch appears only in ``new_*`` (with its final value).
    ``released_runs`` lists ``(run_id, at)`` for runs that became terminal: the
    world disposes their active hooks and completes their waiting waits with
    ``updated_at``/``completed_at`` = ``at`` (after writing the records above).
    ``results`` are the EventResults to return, one per request;
    ``event_json`` maps each new event's id to its data as JSON text (what
    ``encode_json`` gave), so a world need not encode it again."""

    events: list[Event] = field(default_factory=list)
    new_runs: dict[str, Run] = field(default_factory=dict)
    changed_runs: dict[str, Run] = field(default_factory=dict)
    new_steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    changed_steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    new_hooks: dict[str, Hook] = field(default_factory=dict)
    changed_hooks: dict[str, Hook] = field(default_factory=dict)
    new_waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    changed_waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    released_runs: list[tuple[str, datetime]] = field(default_factory=list)
    results: list[EventResult] = field(default_factory=list)
    event_json: dict[str, str] = field(default_factory=dict)


class _Overlay:
    """A RecordLoader that sees the writes planned so far on top of the world's."""

    def __init__(self, base: RecordLoader, plan: PlannedWrites) -> None:
        self.base = base
        self.plan = plan
        self.released: set[str] = set()
        self.runs_read: dict[str, Run | None] = {}
        self.statuses_read: dict[str, RunStatus | None] = {}

    def run(self, run_id: str) -> Run | None:
        found = self.plan.new_runs.get(run_id) or self.plan.changed_runs.get(run_id)
        if found is not None:
            return found
        # Every event of a batch checks its run: read it from the world once.
        if run_id not in self.runs_read:
            self.runs_read[run_id] = self.base.load_run(run_id)
        return self.runs_read[run_id]

    def run_status(self, run_id: str) -> RunStatus | None:
        found = self.plan.new_runs.get(run_id) or self.plan.changed_runs.get(run_id)
        if found is None:
            found = self.runs_read.get(run_id)
        if found is not None:
            return found.status
        if run_id not in self.statuses_read:
            load_status = getattr(self.base, "load_run_status", None)
            if load_status is None:
                run = self.run(run_id)
                return None if run is None else run.status
            self.statuses_read[run_id] = load_status(run_id)
        return self.statuses_read[run_id]

    def step(self, run_id: str, step_id: str) -> Step | None:
        key = (run_id, step_id)
        found = self.plan.new_steps.get(key) or self.plan.changed_steps.get(key)
        return found if found is not None else self.base.load_step(run_id, step_id)

    def hook(self, hook_id: str) -> Hook | None:
        found = self.plan.new_hooks.get(hook_id) or self.plan.changed_hooks.get(hook_id)
        return found if found is not None else self.base.load_hook(hook_id)

    def active_hook_by_token(self, token: str) -> Hook | None:
        for pending in (self.plan.new_hooks, self.plan.changed_hooks):
            for hook in pending.values():
                if hook.token == token and hook.status == "active":
                    return hook
        held = self.base.load_active_hook_by_token(token)
        if held is None or held.run_id in self.released:
            return None
        shadow = self.plan.changed_hooks.get(held.hook_id)
        return held if shadow is None else None

    def wait(self, run_id: str, wait_id: str) -> Wait | None:
        key = (run_id, wait_id)
        found = self.plan.new_waits.get(key) or self.plan.changed_waits.get(key)
        return found if found is not None else self.base.load_wait(run_id, wait_id)

    def latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        for event in reversed(self.plan.events):
            if event.run_id == run_id and event.event_type == event_type:
                return event
        return self.base.load_latest_event(run_id, event_type)

    def put_run(self, run: Run, *, new: bool) -> None:
        if new:
            self.plan.new_runs[run.run_id] = run
        elif run.run_id in self.plan.new_runs:
            self.plan.new_runs[run.run_id] = run
        else:
            self.plan.changed_runs[run.run_id] = run

    def put_step(self, step: Step, *, new: bool) -> None:
        key = (step.run_id, step.step_id)
        target = (
            self.plan.new_steps if new or key in self.plan.new_steps else self.plan.changed_steps
        )
        target[key] = step

    def put_hook(self, hook: Hook, *, new: bool) -> None:
        target = (
            self.plan.new_hooks
            if new or hook.hook_id in self.plan.new_hooks
            else self.plan.changed_hooks
        )
        target[hook.hook_id] = hook

    def put_wait(self, wait: Wait, *, new: bool) -> None:
        key = (wait.run_id, wait.wait_id)
        target = (
            self.plan.new_waits if new or key in self.plan.new_waits else self.plan.changed_waits
        )
        target[key] = wait

    def release_run(self, run_id: str, at: datetime) -> None:
        """Dispose the run's hooks and complete its waits among the planned records."""
        self.released.add(run_id)
        self.plan.released_runs.append((run_id, at))
        for pending in (self.plan.new_hooks, self.plan.changed_hooks):
            for hook_id, hook in list(pending.items()):
                if hook.run_id == run_id and hook.status == "active":
                    pending[hook_id] = hook.model_copy(
                        update={"status": "disposed", "updated_at": at}
                    )
        for pending_waits in (self.plan.new_waits, self.plan.changed_waits):
            for key, wait in list(pending_waits.items()):
                if wait.run_id == run_id and wait.status == "waiting":
                    pending_waits[key] = wait.model_copy(
                        update={"status": "completed", "updated_at": at, "completed_at": at}
                    )


def _require_correlation(event: Event) -> str:
    if not event.correlation_id:
        raise InvalidEventError(f"{event.event_type} needs a correlation_id")
    return event.correlation_id


def _require_field(event: Event, name: str) -> Any:
    if name not in event.data:
        raise InvalidEventError(f"{event.event_type} needs data[{name!r}]")
    return event.data[name]


def _live_run(view: _Overlay, event: Event) -> Run:
    run = view.run(event.run_id)
    if run is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if run.status in RUN_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: run {run.run_id!r} is already {run.status}"
        )
    return run


def _check_run_is_live(view: _Overlay, event: Event) -> None:
    status = view.run_status(event.run_id)
    if status is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if status in RUN_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: run {event.run_id!r} is already {status}"
        )


def _apply_run_event(view: _Overlay, event: Event) -> EventResult:
    at = event.created_at
    if event.event_type == "run_created":
        if view.run(event.run_id) is not None:
            raise EntityConflictError(f"run {event.run_id!r} already exists")
        workflow_name = _require_field(event, "workflow_name")
        run = Run(
            run_id=event.run_id,
            workflow_name=workflow_name,
            status="pending",
            input=event.data.get("input"),
            deployment_id=event.data.get("deployment_id") or "",
            execution_context=event.data.get("execution_context") or {},
            spec_version=event.spec_version,
            created_at=at,
            updated_at=at,
        )
        view.put_run(run, new=True)
        return EventResult(event=event, run=run)
    run = _live_run(view, event)
    if event.event_type == "run_started":
        if run.status != "pending":
            # Only reachable through a fold: a live world never appends a second one.
            return EventResult(event=event, run=run)
        run = run.model_copy(update={"status": "running", "started_at": at, "updated_at": at})
    elif event.event_type == "run_cancelled":
        run = run.model_copy(update={"status": "cancelled", "completed_at": at, "updated_at": at})
    else:
        if run.status != "running":
            raise EntityConflictError(
                f"{event.event_type} refused: run {run.run_id!r} is {run.status}, not running"
            )
        if event.event_type == "run_completed":
            update: dict[str, Any] = {"status": "completed", "output": event.data.get("output")}
        else:
            update = {"status": "failed", "error": event.data.get("error")}
        run = run.model_copy(update={**update, "completed_at": at, "updated_at": at})
    view.put_run(run, new=False)
    if run.status in RUN_TERMINAL:
        view.release_run(run.run_id, at)
    return EventResult(event=event, run=run)


def _apply_step_event(view: _Overlay, event: Event) -> EventResult:
    step_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.step(event.run_id, step_id)
    if event.event_type == "step_created":
        if current is not None:
            raise EntityConflictError(f"step {step_id!r} of run {event.run_id!r} already exists")
        step = Step(
            run_id=event.run_id,
            step_id=step_id,
            step_name=_require_field(event, "step_name"),
            status="pending",
            input=event.data.get("input"),
            created_at=at,
            updated_at=at,
        )
        view.put_step(step, new=True)
        return EventResult(event=event, step=step)
    if current is None:
        raise StepNotFoundError(f"step {step_id!r} of run {event.run_id!r} not found")
    if current.status in STEP_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: step {step_id!r} is already {current.status}"
        )
    if event.event_type == "step_started":
        step = current.model_copy(
            update={
                "status": "running",
                "attempt": current.attempt + 1,
                "started_at": current.started_at or at,
                "updated_at": at,
            }
        )
    else:
        if current.status != "running":
            raise EntityConflictError(
                f"{event.event_type} refused: step {step_id!r} is {current.status}, not running"
            )
        if event.event_type == "step_retrying":
            retry_raw = event.data.get("retry_after")
            step = current.model_copy(
                update={
                    "status": "pending",
                    "error": event.data.get("error"),
                    "retry_after": parse_timestamp(retry_raw) if retry_raw is not None else None,
                    "updated_at": at,
                }
            )
        elif event.event_type == "step_completed":
            step = current.model_copy(
                update={
                    "status": "completed",
                    "output": event.data.get("result"),
                    "completed_at": at,
                    "updated_at": at,
                }
            )
        else:
            step = current.model_copy(
                update={
                    "status": "failed",
                    "error": event.data.get("error"),
                    "completed_at": at,
                    "updated_at": at,
                }
            )
    view.put_step(step, new=False)
    return EventResult(event=event, step=step)


def _apply_hook_event(view: _Overlay, event: Event) -> EventResult:
    hook_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.hook(hook_id)
    if event.event_type in ("hook_created", "hook_conflict"):
        if current is not None:
            raise EntityConflictError(f"hook {hook_id!r} already exists")
        hook = Hook(
            run_id=event.run_id,
            hook_id=hook_id,
            token=_require_field(event, "token"),
            status="active" if event.event_type == "hook_created" else "conflicted",
            metadata=event.data.get("metadata"),
            is_webhook=bool(event.data.get("is_webhook", False)),
            respond_with=event.data.get("respond_with"),
            created_at=at,
            updated_at=at,
        )
        if hook.status == "active" and view.active_hook_by_token(hook.token) is not None:
            raise CorruptedLogError(f"hook_created for token {hook.token!r} held by another hook")
        view.put_hook(hook, new=True)
        return EventResult(event=event, hook=hook)
    if current is None or current.run_id != event.run_id:
        raise HookNotFoundError(f"hook {hook_id!r} of run {event.run_id!r} not found")
    if current.status != "active":
        if event.event_type == "hook_received":
            raise HookNotFoundError(f"hook {hook_id!r} is {current.status}, not active")
        raise EntityConflictError(f"hook_disposed refused: hook {hook_id!r} is {current.status}")
    if event.event_type == "hook_received":
        hook = current.model_copy(update={"updated_at": at})
    else:
        hook = current.model_copy(update={"status": "disposed", "updated_at": at})
    view.put_hook(hook, new=False)
    return EventResult(event=event, hook=hook)


def _apply_wait_event(view: _Overlay, event: Event) -> EventResult:
    wait_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.wait(event.run_id, wait_id)
    if event.event_type == "wait_created":
        if current is not None:
            raise EntityConflictError(f"wait {wait_id!r} of run {event.run_id!r} already exists")
        wait = Wait(
            run_id=event.run_id,
            wait_id=wait_id,
            status="waiting",
            resume_at=parse_timestamp(_require_field(event, "resume_at")),
            created_at=at,
            updated_at=at,
        )
        view.put_wait(wait, new=True)
        return EventResult(event=event, wait=wait)
    if current is None:
        raise WaitNotFoundError(f"wait {wait_id!r} of run {event.run_id!r} not found")
    if current.status != "waiting":
        raise EntityConflictError(f"wait_completed refused: wait {wait_id!r} is already completed")
    wait = current.model_copy(update={"status": "completed", "completed_at": at, "updated_at": at})
    view.put_wait(wait, new=False)
    return EventResult(event=event, wait=wait)


def _apply_event(view: _Overlay, event: Event) -> EventResult:
    kind = event.event_type.split("_", 1)[0]
    if kind == "run":
        return _apply_run_event(view, event)
    if kind == "step":
        return _apply_step_event(view, event)
    if kind == "hook":
        return _apply_hook_event(view, event)
    return _apply_wait_event(view, event)


def plan_events(
    loader: RecordLoader,
    run_id: str,
    requests: Sequence[EventRequest],
    *,
    now: datetime | None = None,
    expected_last_event_id: str | None = None,
) -> PlannedWrites:
    """Check event requests against the lifecycle table and plan the writes.

    Pure apart from reading through ``loader``; raises before anything is planned
    to be written, so a world that calls it first and writes afterwards is
    all-or-nothing. Requests are applied in order, each seeing the previous ones.

    Besides the table's rules: ``run_started`` on a running run appends nothing and
    returns the run with its latest ``run_started`` event; ``hook_created`` for a
    token that another active hook holds becomes a ``hook_conflict`` event with a
    ``conflicted`` hook record; a run that becomes terminal releases its hooks
    and waits (``PlannedWrites.released_runs``).

    Args:
        loader: reads current records inside the world's transaction.
        run_id: the run every request belongs to (already generated for a new run).
        requests: the events to append.
        now: the events' ``created_at`` (default: the current UTC time).
        expected_last_event_id: when given, refuse unless it is the id of the
            run's last stored event (optimistic concurrency).

    Returns:
        The planned writes; ``results`` holds one EventResult per request.

    Raises:
        EntityConflictError: a refused transition or a duplicate creation.
        RunNotFoundError, StepNotFoundError, HookNotFoundError, WaitNotFoundError:
            the event's entity does not exist (or the hook is not active).
        InvalidEventError: a request lacks a correlation id or a required field,
            or its data is not JSON.
    """
    at = now or utc_now()
    plan = PlannedWrites()
    view = _Overlay(loader, plan)
    if expected_last_event_id is not None:
        last = loader.load_last_event_id(run_id)
        if last != expected_last_event_id:
            raise EntityConflictError(
                f"run {run_id!r} moved on: its last event is {last!r}, "
                f"not {expected_last_event_id!r}"
            )
    for request in requests:
        if request.event_type == "hook_conflict":
            raise InvalidEventError("hook_conflict is written by the world, not requested")
        data, data_json = encode_json(request.data)
        event_type: EventType = request.event_type
        if event_type == "run_started":
            run = view.run(run_id)
            if run is not None and run.status == "running":
                latest = view.latest_event(run_id, "run_started")
                if latest is None:
                    raise CorruptedLogError(f"run {run_id!r} is running but has no run_started")
                plan.results.append(EventResult(event=latest, run=run))
                continue
        if event_type == "hook_created":
            token = data.get("token")
            holder = view.active_hook_by_token(token) if isinstance(token, str) else None
            if holder is not None:
                event_type = "hook_conflict"
                data, data_json = encode_json({"token": token, "conflicting_run_id": holder.run_id})
        event = Event(
            event_id=new_id("evnt"),
            run_id=run_id,
            event_type=event_type,
            correlation_id=request.correlation_id,
            data=data,
            created_at=at if request.created_at is None else parse_timestamp(request.created_at),
        )
        try:
            result = _apply_event(view, event)
        except ValidationError as exc:  # e.g. a token that is not a string
            raise InvalidEventError(f"{event.event_type}: malformed data: {exc}") from exc
        plan.events.append(event)
        plan.results.append(result)
        plan.event_json[event.event_id] = data_json
    return plan


@dataclass
class FoldedState:
    """The records a fold of event logs gives, keyed like the worlds key them."""

    runs: dict[str, Run] = field(default_factory=dict)
    steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    hooks: dict[str, Hook] = field(default_factory=dict)
    waits: dict[tuple[str, str], Wait] = field(default_factory=dict)


class StateLoader:
    """A RecordLoader over a FoldedState in memory (used by fold and MemoryWorld)."""

    def __init__(
        self, state: FoldedState, events: Mapping[str, Sequence[Event]] | None = None
    ) -> None:
        self.state = state
        self.events = events if events is not None else {}
        self.tokens: dict[str, str] = {
            hook.token: hook.hook_id for hook in state.hooks.values() if hook.status == "active"
        }
        # Per-run keys in creation order, so per-run reads never scan every run.
        self.step_keys: dict[str, list[tuple[str, str]]] = {}
        self.hook_ids: dict[str, list[str]] = {}
        self.wait_keys: dict[str, list[tuple[str, str]]] = {}
        for step_key in state.steps:
            self.step_keys.setdefault(step_key[0], []).append(step_key)
        for hook in state.hooks.values():
            self.hook_ids.setdefault(hook.run_id, []).append(hook.hook_id)
        for wait_key in state.waits:
            self.wait_keys.setdefault(wait_key[0], []).append(wait_key)

    def steps_of(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return [self.state.steps[key] for key in self.step_keys.get(run_id, ())]

    def hooks_of(self, run_id: str) -> list[Hook]:
        """The run's hooks in creation order."""
        return [self.state.hooks[key] for key in self.hook_ids.get(run_id, ())]

    def waits_of(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return [self.state.waits[key] for key in self.wait_keys.get(run_id, ())]

    def load_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        return self.state.runs.get(run_id)

    def load_run_status(self, run_id: str) -> RunStatus | None:
        """The run's status, or None when it does not exist."""
        run = self.state.runs.get(run_id)
        return None if run is None else run.status

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        """The step, or None."""
        return self.state.steps.get((run_id, step_id))

    def load_hook(self, hook_id: str) -> Hook | None:
        """The hook (any status), or None."""
        return self.state.hooks.get(hook_id)

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        """The active hook holding ``token``, or None."""
        hook_id = self.tokens.get(token)
        return None if hook_id is None else self.state.hooks[hook_id]

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        """The wait, or None."""
        return self.state.waits.get((run_id, wait_id))

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        """The run's most recent event of ``event_type``, or None."""
        for event in reversed(self.events.get(run_id, ())):
            if event.event_type == event_type:
                return event
        return None

    def load_last_event_id(self, run_id: str) -> str | None:
        """The id of the run's last event, or None for an empty log."""
        events = self.events.get(run_id)
        return events[-1].event_id if events else None

    def apply(self, plan: PlannedWrites) -> None:
        """Write ``plan`` into the state (the in-memory equivalent of a commit)."""
        state = self.state
        state.runs.update(plan.new_runs)
        state.runs.update(plan.changed_runs)
        for step_key in plan.new_steps:
            self.step_keys.setdefault(step_key[0], []).append(step_key)
        state.steps.update(plan.new_steps)
        state.steps.update(plan.changed_steps)
        for hook in plan.new_hooks.values():
            self.hook_ids.setdefault(hook.run_id, []).append(hook.hook_id)
        for hooks in (plan.new_hooks, plan.changed_hooks):
            for hook in hooks.values():
                self._put_hook(hook)
        for wait_key in plan.new_waits:
            self.wait_keys.setdefault(wait_key[0], []).append(wait_key)
        state.waits.update(plan.new_waits)
        state.waits.update(plan.changed_waits)
        for run_id, at in plan.released_runs:
            for hook in self.hooks_of(run_id):
                if hook.status == "active":
                    self._put_hook(hook.model_copy(update={"status": "disposed", "updated_at": at}))
            for wait in self.waits_of(run_id):
                if wait.status == "waiting":
                    state.waits[(wait.run_id, wait.wait_id)] = wait.model_copy(
                        update={"status": "completed", "updated_at": at, "completed_at": at}
                    )

    def _put_hook(self, hook: Hook) -> None:
        self.state.hooks[hook.hook_id] = hook
        if hook.status == "active":
            self.tokens[hook.token] = hook.hook_id
        elif self.tokens.get(hook.token) == hook.hook_id:
            del self.tokens[hook.token]


def fold_events(events: Iterable[Event]) -> FoldedState:
    """Replay stored events (of one or many runs, each run's in log order) through
    the lifecycle rules and return the records they give.

    This is what every world's materialized records must equal; ``wfkit verify``
    compares the two with ``diff_run_records``.

    Raises:
        CorruptedLogError: an event the rules refuse at its position in the log.
    """
    state = FoldedState()
    loader = StateLoader(state)
    for event in events:
        plan = PlannedWrites()
        try:
            result = _apply_event(_Overlay(loader, plan), event)
        except (WorldError, ValidationError) as exc:
            raise CorruptedLogError(
                f"event {event.event_id} ({event.event_type}) of run {event.run_id!r} "
                f"cannot be folded: {exc}"
            ) from exc
        plan.events.append(event)
        plan.results.append(result)
        loader.apply(plan)
    return state


def diff_run_records(world: World, run_id: str) -> list[str]:
    """Compare a fresh fold of one run's log with the world's materialized records.

    Returns:
        Human-readable differences; empty when the records match the fold.
    """
    try:
        folded = fold_events(world.events.list(run_id))
    except CorruptedLogError as exc:
        return [str(exc)]
    problems: list[str] = []

    def compare(
        kind: str, key: object, expected: BaseModel | None, actual: BaseModel | None
    ) -> None:
        if expected != actual:
            problems.append(f"{kind} {key}: fold gives {expected!r}, world has {actual!r}")

    try:
        actual_run: Run | None = world.runs.get(run_id)
    except RunNotFoundError:
        actual_run = None
    compare("run", run_id, folded.runs.get(run_id), actual_run)
    actual_steps = {(s.run_id, s.step_id): s for s in world.steps.list(run_id)}
    for key in sorted(set(folded.steps) | set(actual_steps)):
        compare("step", key, folded.steps.get(key), actual_steps.get(key))
    actual_hooks = {h.hook_id: h for h in world.hooks.list(run_id=run_id)}
    for hook_key in sorted(set(folded.hooks) | set(actual_hooks)):
        compare("hook", hook_key, folded.hooks.get(hook_key), actual_hooks.get(hook_key))
    actual_waits = {(w.run_id, w.wait_id): w for w in world.waits.list(run_id)}
    for wait_key in sorted(set(folded.waits) | set(actual_waits)):
        compare("wait", wait_key, folded.waits.get(wait_key), actual_waits.get(wait_key))
    return problems
