"""The in-process world: everything in dicts behind one lock, for tests.

Same semantics as the durable worlds (it shares their lifecycle rules through
``wfkit.worlds.base.plan_events``); nothing survives the process. Thread-safe: one
re-entrant lock guards all state, and one condition wakes queue receivers and
stream readers.
"""

from __future__ import annotations

import builtins
import heapq
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    Event,
    EventRequest,
    EventResult,
    Events,
    FoldedState,
    Hook,
    HookNotFoundError,
    Hooks,
    Queue,
    QueueMessage,
    QueueMessageRequest,
    Run,
    RunNotFoundError,
    Runs,
    RunStatus,
    Schedules,
    StateLoader,
    Step,
    StepNotFoundError,
    Steps,
    StreamPage,
    Streams,
    Wait,
    WaitNotFoundError,
    Waits,
    create_batches_one_by_one,
    current_clock,
    new_id,
    normalize_json,
    plan_events,
    run_id_for_create,
    stream_start_index,
    utc_now,
)
from wfkit.worlds.memory.schedules import MemorySchedules

__all__ = ["MemoryWorld"]

_IDLE_POLL_SECONDS = 0.05


def _epoch_to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class _Message:
    message_id: str
    queue: str
    payload: dict[str, Any]
    attempt: int
    idempotency_key: str | None
    run_id: str | None
    created_at: datetime
    visible_at: float
    seq: int

    def snapshot(self) -> QueueMessage:
        return QueueMessage(
            message_id=self.message_id,
            queue=self.queue,
            payload=self.payload,
            attempt=self.attempt,
            idempotency_key=self.idempotency_key,
            run_id=self.run_id,
            created_at=self.created_at,
            visible_at=_epoch_to_datetime(self.visible_at),
        )


@dataclass
class _Stream:
    chunks: list[bytes]
    closed: bool = False


class _Core:
    """The shared state of one MemoryWorld."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.state = FoldedState()
        self.events: dict[str, list[Event]] = {}
        self.loader = StateLoader(self.state, self.events)
        self.messages: dict[str, _Message] = {}
        self.keys: dict[str, str] = {}
        self.message_seq = 0
        # (visible_at, seq, message_id), lazily pruned: an entry whose message is
        # gone or whose visible_at has changed since is stale and skipped.
        self.visibility: list[tuple[float, int, str]] = []
        self.streams: dict[tuple[str, str], _Stream] = {}
        # Run ids by idempotency key: the unique index of the SQL worlds.
        self.run_keys: dict[str, str] = {}

    def enqueue_locked(self, request: QueueMessageRequest, payload: dict[str, Any]) -> str:
        """Add a message whose payload is already JSON-normalized; the lock is held."""
        if request.idempotency_key is not None:
            existing = self.keys.get(request.idempotency_key)
            if existing is not None:
                return existing
        run_id = payload.get("run_id")
        self.message_seq += 1
        message = _Message(
            message_id=new_id("msg"),
            queue=request.queue,
            payload=payload,
            attempt=0,
            idempotency_key=request.idempotency_key,
            run_id=run_id if isinstance(run_id, str) else None,
            created_at=utc_now(),
            visible_at=current_clock().timestamp() + max(0.0, request.delay_seconds),
            seq=self.message_seq,
        )
        self.messages[message.message_id] = message
        heapq.heappush(self.visibility, (message.visible_at, message.seq, message.message_id))
        if message.idempotency_key is not None:
            self.keys[message.idempotency_key] = message.message_id
        self.changed.notify_all()
        return message.message_id

    def take_visible(self, prefixes: tuple[str, ...], now: float, limit: int) -> list[_Message]:
        """Visible messages under ``prefixes`` to lease (the lock is held)."""
        return _take_visible(self, prefixes, now, limit)

    def set_visible(self, message: _Message, visible_at: float) -> None:
        """Change when a message becomes visible (the lock is held)."""
        message.visible_at = visible_at
        heapq.heappush(self.visibility, (visible_at, message.seq, message.message_id))

    def next_visible_at(self) -> float | None:
        """The earliest visibility time of any message (an upper bound on the wait)."""
        return self.visibility[0][0] if self.visibility else None


def _take_visible(core: _Core, prefixes: tuple[str, ...], now: float, limit: int) -> list[_Message]:
    """Pop up to ``limit`` visible messages under ``prefixes``, oldest visibility first."""
    taken: list[_Message] = []
    passed_over: list[tuple[float, int, str]] = []
    heap = core.visibility
    while heap and len(taken) < limit and heap[0][0] <= now:
        entry = heapq.heappop(heap)
        message = core.messages.get(entry[2])
        if message is None or message.visible_at != entry[0] or message in taken:
            continue
        if message.queue.startswith(prefixes):
            taken.append(message)
        else:
            passed_over.append(entry)
    for entry in passed_over:
        heapq.heappush(heap, entry)
    return taken


class MemoryEvents:
    """``world.events`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def create(self, run_id: str | None, request: EventRequest) -> EventResult:
        """Append one event and update its record; see ``wfkit.worlds.base.Events.create``."""
        return self.create_batch(run_id_for_create(run_id, request), [request])[0]

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Several runs' batches under one hold of the lock (the lock is reentrant:
        each write is ``create_batch``, all or nothing on its own); see
        ``wfkit.worlds.base.Events.create_batches``."""
        with self._core.lock:
            return create_batches_one_by_one(self, writes)

    def create_batch(
        self,
        run_id: str,
        requests: Sequence[EventRequest],
        *,
        messages: Sequence[QueueMessageRequest] = (),
        expected_last_event_id: str | None = None,
    ) -> list[EventResult]:
        """Append events of one run and enqueue ``messages``, all or nothing.

        See ``wfkit.worlds.base.Events.create_batch``."""
        core = self._core
        with core.lock:
            plan = plan_events(
                core.loader, run_id, requests, expected_last_event_id=expected_last_event_id
            )
            payloads = [normalize_json(m.payload) for m in messages]  # fail before writing
            for run in plan.new_runs.values():
                if run.idempotency_key is not None and run.idempotency_key in core.run_keys:
                    raise EntityConflictError(
                        f"a run with idempotency key {run.idempotency_key!r} exists"
                    )
            for run in plan.new_runs.values():
                if run.idempotency_key is not None:
                    core.run_keys[run.idempotency_key] = run.run_id
            core.loader.apply(plan)
            if plan.events:
                core.events.setdefault(run_id, []).extend(plan.events)
            for message, payload in zip(messages, payloads, strict=True):
                core.enqueue_locked(message, payload)
            return plan.results

    def list(
        self, run_id: str, *, after_event_id: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """The run's events in append order, after ``after_event_id`` if given."""
        with self._core.lock:
            events = list(self._core.events.get(run_id, ()))
        if after_event_id is not None:
            for index, event in enumerate(events):
                if event.event_id == after_event_id:
                    events = events[index + 1 :]
                    break
            else:
                events = [e for e in events if e.event_id > after_event_id]
        return events if limit is None else events[:limit]


class MemoryRuns:
    """``world.runs`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def get(self, run_id: str) -> Run:
        """The run; RunNotFoundError when it does not exist."""
        with self._core.lock:
            run = self._core.state.runs.get(run_id)
        if run is None:
            raise RunNotFoundError(f"run {run_id!r} not found")
        return run

    def list(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        """Runs, newest first, optionally filtered by status and workflow."""
        with self._core.lock:
            runs = list(self._core.state.runs.values())
        runs = [
            r
            for r in runs
            if (status is None or r.status == status)
            and (workflow_name is None or r.workflow_name == workflow_name)
        ]
        runs.sort(key=lambda r: r.run_id, reverse=True)
        return runs[:limit]

    def get_by_idempotency_key(self, idempotency_key: str) -> Run:
        """The run started with ``idempotency_key``; RunNotFoundError when none was."""
        with self._core.lock:
            run_id = self._core.run_keys.get(idempotency_key)
            run = None if run_id is None else self._core.state.runs.get(run_id)
        if run is None:
            raise RunNotFoundError(f"no run has idempotency key {idempotency_key!r}")
        return run

    def list_queued(
        self,
        queue_name: str,
        *,
        status: RunStatus | None = None,
        started_after: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[Run]:
        """Runs of a named queue in admission order (priority, then run id)."""
        with self._core.lock:
            runs = [
                r
                for r in self._core.state.runs.values()
                if r.queue_name == queue_name
                and (status is None or r.status == status)
                and (
                    started_after is None
                    or (r.started_at is not None and r.started_at >= started_after)
                )
            ]
        runs.sort(key=lambda r: (r.queue_priority or 0, r.run_id))
        return runs[:limit]


class MemorySteps:
    """``world.steps`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def get(self, run_id: str, step_id: str) -> Step:
        """The step; StepNotFoundError when it does not exist."""
        with self._core.lock:
            step = self._core.state.steps.get((run_id, step_id))
        if step is None:
            raise StepNotFoundError(f"step {step_id!r} of run {run_id!r} not found")
        return step

    def list(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        with self._core.lock:
            return self._core.loader.steps_of(run_id)


class MemoryHooks:
    """``world.hooks`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def get(self, hook_id: str) -> Hook:
        """The hook (any status); HookNotFoundError when it does not exist."""
        with self._core.lock:
            hook = self._core.state.hooks.get(hook_id)
        if hook is None:
            raise HookNotFoundError(f"hook {hook_id!r} not found")
        return hook

    def get_by_token(self, token: str) -> Hook:
        """The active hook holding ``token``; HookNotFoundError otherwise."""
        with self._core.lock:
            hook = self._core.loader.load_active_hook_by_token(token)
        if hook is None:
            raise HookNotFoundError(f"no active hook holds token {token!r}")
        return hook

    def list(self, *, run_id: str | None = None) -> list[Hook]:
        """Hooks (of one run if given) in creation order."""
        with self._core.lock:
            if run_id is not None:
                return self._core.loader.hooks_of(run_id)
            return list(self._core.state.hooks.values())


class MemoryWaits:
    """``world.waits`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def get(self, run_id: str, wait_id: str) -> Wait:
        """The wait; WaitNotFoundError when it does not exist."""
        with self._core.lock:
            wait = self._core.state.waits.get((run_id, wait_id))
        if wait is None:
            raise WaitNotFoundError(f"wait {wait_id!r} of run {run_id!r} not found")
        return wait

    def list(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        with self._core.lock:
            return self._core.loader.waits_of(run_id)


class MemoryQueue:
    """``world.queue`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any],
        *,
        delay_seconds: float = 0.0,
        idempotency_key: str | None = None,
    ) -> str:
        """Add a message; a key held by an unacked message returns that message's id."""
        request = QueueMessageRequest(
            queue=queue,
            payload=dict(payload),
            delay_seconds=delay_seconds,
            idempotency_key=idempotency_key,
        )
        normalized = normalize_json(request.payload)
        with self._core.lock:
            return self._core.enqueue_locked(request, normalized)

    def receive(
        self,
        prefixes: Sequence[str],
        *,
        lease_seconds: float,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
    ) -> list[QueueMessage]:
        """Lease visible messages whose queue starts with one of ``prefixes``."""
        core = self._core
        deadline = time.monotonic() + wait_seconds
        if not prefixes:
            raise ValueError("receive needs at least one queue-name prefix")
        prefix_tuple = tuple(prefixes)
        with core.lock:
            while True:
                now = current_clock().timestamp()
                ready = core.take_visible(prefix_tuple, now, max_messages)
                if ready:
                    for message in ready:
                        message.attempt += 1
                        core.set_visible(message, now + lease_seconds)
                    return [m.snapshot() for m in ready]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                upcoming = core.next_visible_at()
                if upcoming is None:
                    timeout = remaining
                elif upcoming > now:
                    timeout = min(remaining, upcoming - now)
                else:  # visible, but under other prefixes: look again now and then
                    timeout = min(remaining, _IDLE_POLL_SECONDS)
                core.changed.wait(max(timeout, 0.001))

    def _leased(self, message_id: str, attempt: int | None) -> Any:
        message = self._core.messages.get(message_id)
        if message is None or (attempt is not None and message.attempt != attempt):
            return None
        return message

    def ack(self, message_id: str, *, attempt: int | None = None) -> None:
        """Delete the message (a no-op when it is gone or, with ``attempt``, re-leased)."""
        core = self._core
        with core.lock:
            message = self._leased(message_id, attempt)
            if message is not None:
                del core.messages[message_id]
                if message.idempotency_key is not None:
                    core.keys.pop(message.idempotency_key, None)

    def nack(
        self, message_id: str, *, delay_seconds: float = 0.0, attempt: int | None = None
    ) -> None:
        """Make a leased message visible again after ``delay_seconds``."""
        core = self._core
        with core.lock:
            message = self._leased(message_id, attempt)
            if message is not None:
                core.set_visible(message, current_clock().timestamp() + max(0.0, delay_seconds))
                core.changed.notify_all()

    def extend_lease(
        self, message_id: str, *, lease_seconds: float, attempt: int | None = None
    ) -> None:
        """Keep a leased message invisible for ``lease_seconds`` from now."""
        with self._core.lock:
            message = self._leased(message_id, attempt)
            if message is not None:
                self._core.set_visible(message, current_clock().timestamp() + lease_seconds)

    def next_visible_at(self, *, excluding: tuple[str, ...] = ()) -> float | None:
        """When the earliest message not yet acked becomes visible (epoch seconds by
        ``current_clock()``); None when the queue is empty. A leased message counts
        at its lease's end: the testing kit asks only when nothing is leased.
        Messages whose queue starts with a prefix in ``excluding`` are left out."""
        with self._core.lock:
            times = [
                m.visible_at
                for m in self._core.messages.values()
                if not m.queue.startswith(excluding)
            ]
        return min(times, default=None)

    def live_run_ids(self) -> set[str]:
        """Run ids that have at least one message not yet acked."""
        with self._core.lock:
            return {m.run_id for m in self._core.messages.values() if m.run_id is not None}

    def queue_names(self, prefix: str) -> set[str]:
        """Names of the queues starting with ``prefix`` that hold a message not yet acked."""
        with self._core.lock:
            return {m.queue for m in self._core.messages.values() if m.queue.startswith(prefix)}

    def delete_messages(self, run_id: str) -> int:
        """Drop every message of a run; returns how many."""
        core = self._core
        with core.lock:
            doomed = [m for m in core.messages.values() if m.run_id == run_id]
            for message in doomed:
                self.ack(message.message_id)
            return len(doomed)


class MemoryStreams:
    """``world.streams`` of the memory world."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    def append(self, run_id: str, name: str, data: bytes) -> int:
        """Append a chunk; returns its index. EntityConflictError once closed."""
        core = self._core
        with core.lock:
            stream = core.streams.setdefault((run_id, name), _Stream(chunks=[]))
            if stream.closed:
                raise EntityConflictError(f"stream {name!r} of run {run_id!r} is closed")
            stream.chunks.append(bytes(data))
            core.changed.notify_all()
            return len(stream.chunks) - 1

    def close(self, run_id: str, name: str) -> None:
        """Mark the stream finished (idempotent)."""
        core = self._core
        with core.lock:
            core.streams.setdefault((run_id, name), _Stream(chunks=[])).closed = True
            core.changed.notify_all()

    def read(
        self, run_id: str, name: str, *, start_index: int = 0, limit: int | None = None
    ) -> StreamPage:
        """Chunks from ``start_index`` (at most ``limit``; a negative index counts
        from the end)."""
        with self._core.lock:
            stream = self._core.streams.get((run_id, name))
            if stream is None:
                return StreamPage(chunks=[], next_index=max(start_index, 0), closed=False)
            start_index = stream_start_index(start_index, len(stream.chunks))
            end = len(stream.chunks) if limit is None else start_index + limit
            chunks = stream.chunks[start_index:end]
            return StreamPage(
                chunks=chunks,
                next_index=start_index + len(chunks),
                closed=stream.closed and start_index + len(chunks) >= len(stream.chunks),
            )

    def wait(self, run_id: str, name: str, *, after_index: int, timeout: float) -> None:
        """Block until chunk ``after_index`` exists, the stream closes, or ``timeout``."""
        core = self._core
        deadline = time.monotonic() + timeout
        with core.lock:
            while True:
                stream = core.streams.get((run_id, name))
                if stream is not None and (stream.closed or len(stream.chunks) > after_index):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                core.changed.wait(remaining)

    def list(self, run_id: str) -> list[str]:
        """Names of the run's streams, sorted."""
        with self._core.lock:
            return sorted(name for (rid, name) in self._core.streams if rid == run_id)


class MemoryWorld:
    """A World kept in process memory (``WFKIT_WORLD=memory``)."""

    name = "memory"

    def __init__(self) -> None:
        core = _Core()
        self.events: Events = MemoryEvents(core)
        self.runs: Runs = MemoryRuns(core)
        self.steps: Steps = MemorySteps(core)
        self.hooks: Hooks = MemoryHooks(core)
        self.waits: Waits = MemoryWaits(core)
        self.queue: Queue = MemoryQueue(core)
        self.streams: Streams = MemoryStreams(core)
        self.schedules: Schedules = MemorySchedules()

    def close(self) -> None:
        """Nothing to release."""
