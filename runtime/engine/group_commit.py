"""Group commit across runs: the writes of a worker's runs that are ready together
share one transaction (issue #13, DESIGN.md §6c).

Every run a worker drives writes once per sequential step (``Orchestrator``). Written
one by one on the event loop, each write blocks every other run for a whole commit
(a WAL append, a round trip), so a worker's throughput is one run's commit rate.
The ``GroupCommitter`` instead hands writes to one writer thread: while a group
commits there, the loop keeps running other runs' workflow code and their writes
queue up; the next group takes all of them (up to ``max_group``) in ONE
``Events.create_batches`` call. Each run still awaits its own write's outcome
before it moves on, so every step is durable before its run continues.

Policy: the thread hop costs ~50-100 µs, which a run driven alone would pay for
nothing (no one to overlap with, no one to share a commit with). So a write with
no group in flight and no other run being driven (``crowded`` answers False) is
written on the loop, exactly as before.

Worlds that write in-process without waiting on a server (memory; local: SQLite
in WAL mode with ``synchronous=NORMAL``, a commit is an append to the WAL, no
fsync) gain nothing from the thread: the commit is CPU the process spends either
way, and the hop (a future, ``call_soon_threadsafe``, a self-pipe wake-up, GIL
hand-overs) costs more than it overlaps. For them (``in_loop=True``) a group is
written on the loop, by a callback scheduled at the first write of a tick: the
writes of the runs that become ready in the same loop iteration join it, and
each run still awaits its own outcome. Measured (2,000 runs x 5 trivial steps,
one worker, local): instructions per run (valgrind) 11.1 M -> 10.9 M; CPU per run
of the loop + writer threads (/proc, noisy on a shared machine) ~2.5 -> ~2.15 ms.
The writes themselves (``create_batches``) are most of the rest: ~1.2 ms of a
local run, ~0.5 ms of a memory run.

On the loop, a group must not block the loop while ANOTHER process holds the
database's write lock (local: several worker processes share one SQLite file):
the loop could run other runs' workflow code meanwhile. A world that offers
``Events.prepare_batches`` (``wfkit.worlds.base.PreparedBatches``) has the group
planned, then written without waiting; when the lock is busy the group is kept
and written (waiting) by the next callback, after the callbacks ready by then:
one round of other work overlaps the other process's commit, and the writes
made ready in that round form the next group. Waiting longer (polling) would
spin a core that the lock's holder may need; a writer thread would hold the lock
while fighting the loop for the GIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EventResult,
    Events,
    PreparedBatches,
    WorldError,
)

__all__ = ["DEFAULT_MAX_GROUP", "IN_PROCESS_WORLDS", "GroupCommitter"]

DEFAULT_MAX_GROUP = 256
"""Most writes in one transaction: bounds how long one commit holds the database's
write lock (and how much one failed transaction takes down with it)."""

IN_PROCESS_WORLDS = frozenset({"memory", "local"})
"""Worlds (by ``World.name``) whose groups are written on the loop (``in_loop``)."""

_Pending = tuple[BatchWrite, "asyncio.Future[BatchOutcome]"]


class GroupCommitter:
    """Writes runs' batches, grouping those that are ready together.

    Args:
        events: the world's event log.
        crowded: whether other runs are being driven now (worth going to the thread).
        max_group: most writes per ``create_batches`` call.
        in_loop: write groups on the event loop instead of a writer thread (worlds
            that write in-process: memory, local).
    """

    def __init__(
        self,
        events: Events,
        *,
        crowded: Callable[[], bool],
        max_group: int = DEFAULT_MAX_GROUP,
        in_loop: bool = False,
    ) -> None:
        self._events = events
        self._crowded = crowded
        self.max_group = max(1, max_group)
        self.in_loop = in_loop
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._scheduled: asyncio.Handle | None = None
        """The loop callback that writes the next group (``in_loop``)."""
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._deferred: tuple[list[_Pending], PreparedBatches] | None = None
        """A group planned on the loop that found the write lock busy (``in_loop``)."""

    async def write(self, write: BatchWrite) -> list[EventResult]:
        """Write one run's batch, durable on return.

        Raises:
            WorldError: the world refused it (``EntityConflictError`` and its kin:
                someone else wrote first) or could not write it.
        """
        if not self._busy() and not self._crowded():
            return self._events.create_batch(
                write.run_id,
                write.requests,
                messages=write.messages,
                expected_last_event_id=write.expected_last_event_id,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchOutcome] = loop.create_future()
        self._pending.append((write, future))
        if self.in_loop:
            # (A callback left on a loop that ended never runs: schedule on this one.)
            if self._scheduled is None or self._scheduled_on is not loop:
                self._scheduled = loop.call_soon(self._flush_here)
                self._scheduled_on = loop
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="wfkit-group-commit")
        outcome = await future
        if isinstance(outcome, WorldError):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop the writer thread (after the group it may be writing)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _busy(self) -> bool:
        return (
            bool(self._pending)
            or self._deferred is not None
            or (self._flusher is not None and not self._flusher.done())
        )

    def _flush_here(self) -> None:
        """Write the pending writes on the loop (``in_loop``), a group at a time.

        Scheduled by the first write of a tick, it runs after the callbacks ready
        then: the writes of every run made ready in that tick join. A group that
        finds the write lock held by another process is written (waiting) by the
        next call, scheduled behind the callbacks ready now (the module's docstring)."""
        self._scheduled = None
        if self._deferred is not None:
            waiting, kept = self._deferred
            self._deferred = None
            self._write_prepared(waiting, kept, wait=True)
        prepare = getattr(self._events, "prepare_batches", None)
        while self._pending:
            group = self._pending[: self.max_group]
            del self._pending[: self.max_group]
            live = [(write, future) for write, future in group if not future.cancelled()]
            if not live:
                continue
            writes = [write for write, _ in live]
            if prepare is None:
                try:
                    outcomes = self._events.create_batches(writes)
                except Exception as exc:
                    _fail(live, exc)
                    continue
                _settle(live, outcomes)
                continue
            try:
                prepared = prepare(writes)
            except Exception as exc:
                _fail(live, exc)
                continue
            if not self._write_prepared(live, prepared, wait=False):
                self._deferred = (live, prepared)
                loop = asyncio.get_running_loop()
                self._scheduled = loop.call_soon(self._flush_here)
                self._scheduled_on = loop
                return

    def _write_prepared(
        self, live: list[_Pending], prepared: PreparedBatches, *, wait: bool
    ) -> bool:
        """Write a prepared group and settle its writes; False when ``wait`` is False
        and the write lock was busy (nothing written, nothing settled)."""
        try:
            outcomes = prepared.write(wait=wait)
        except Exception as exc:
            _fail(live, exc)
            return True
        if outcomes is None:
            return False
        _settle(live, outcomes)
        return True

    async def _flush(self) -> None:
        """Write groups until no write is pending. Started in the tick of the first
        write, it takes its first group a tick later: writes of the same tick join."""
        loop = asyncio.get_running_loop()
        while self._pending:
            group = self._pending[: self.max_group]
            del self._pending[: self.max_group]
            writes = [write for write, _ in group]
            try:
                # No run's context (tracing, registry scope) is carried over: the group
                # is many runs' writes, and the world reads no context.
                outcomes = await loop.run_in_executor(
                    self._writer(), self._events.create_batches, writes
                )
            except asyncio.CancelledError:
                # The loop is going away: no one will collect these outcomes.
                for _, future in [*group, *self._pending]:
                    future.cancel()
                self._pending.clear()
                raise
            except Exception as exc:
                _fail(group, exc)
                continue
            _settle(group, outcomes)

    def _writer(self) -> ThreadPoolExecutor:
        """The one writer thread (one thread: it keeps its own database connection)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wfkit-commit")
        return self._executor


def _settle(group: list[_Pending], outcomes: list[BatchOutcome]) -> None:
    """Hand each write of a written group its outcome (its results, or its refusal)."""
    for (_, future), outcome in zip(group, outcomes, strict=True):
        if not future.done():
            future.set_result(outcome)


def _fail(group: list[_Pending], exc: Exception) -> None:
    """The whole call failed (a lost connection, say): every write of the group gets
    the error; none of them is known written."""
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
