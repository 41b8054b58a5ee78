"""``world.events`` of the local world: the event log.

A write is one ``BEGIN IMMEDIATE`` transaction: load the few rows the requests
touch (``loader``: the run, and all steps of the batch in one query), let
``wfkit.worlds.base.plan_events`` check the lifecycle rules, then write the planned
events and records (``writes``) and any queue messages.

``create_batches`` (group commit across runs) writes several runs' batches in ONE
such transaction. The write lock is shared by every worker process of the file,
so what is done under it is what the processes cannot do at once. A group is
therefore planned BEFORE the lock and only checked and written under it:

- Outside the lock, in one read transaction, each write that names its
  ``expected_last_event_id`` and reads nothing beyond its own run's rows is
  loaded and planned (``plan_events``, most of a write's CPU), and its rows
  encoded as statement parameters (``writes.plan_statements``).
- Under the lock, ONE statement reads the last event id of every run so planned.
  A write whose run's last event is still its expected one has its statements
  run as they are (no savepoint: nothing in them can be refused, below); any
  other write (its run moved on, its plan refused, a second write of a run in the
  group, a write not planned before the lock) is planned again under the lock, as
  ``create_batch`` does, under its own SAVEPOINT: a write the rules (or a
  constraint) refuse is rolled back to its savepoint and answered with its error,
  the others commit together.

Why a plan checked this way is the plan the lock would have made: every row a
plan of such a write reads is one of its run's (the run, its steps, its waits, its
hooks by id: a hook of another run is refused, so a successful plan read only its
own run's; its events), and every change of those rows is a write of this module
that appends an event to that run in the same transaction (the world has no other
writer of runs, steps, hooks, waits or events: ``release_hooks``/``release_waits``
ride on the run's terminal event, deadlines and queue admission are events, queue
rows are not read by a plan). Events are only appended and their ids never reused,
so a run whose last event id is unchanged since the plan read it has none of those
rows changed either. Excluded, and planned under the lock only: ``run_created``
(unique run id and idempotency key) and ``hook_created`` (reads the active hooks of
every run by token). A planned write that a constraint still refuses rolls the
whole transaction back and the group is written again the careful way, every
write planned under the lock.

Most writes need not even read before the lock. After each committed write this
world object remembers the records it left (``wfkit.worlds.sql.tails``: the run's
full record, the steps it wrote, the run's new last event id); a write whose
``expected_last_event_id`` is that remembered last event id is planned on them,
with no read transaction (``plan_on_tail``). The check under the lock is what
makes that correct: it confirms the run's log still ends at that id, so (by the
argument above) its rows are still exactly what this process's own write left,
and the plan on the tail is the plan a read would have made. That holds for the
whole run row, so a write starting or ending its run (``tails.RUN_EVENTS``) may
be planned on the tail too. A read of the run's whole log seeds its tail from the
log's fold (``TailCache.seed``). One assumption of the tail is checked by a constraint
instead: a step the write creates and the tail does not hold is taken not to
exist (the tail holds only the unfinished steps this process wrote); if it does,
its INSERT is refused and the group goes the careful way above, which gives the
read path's answer. ``create_batch`` takes the tail the same way, under the lock
(one SELECT of the last event id instead of the records). A refused write, or a
transaction that failed, forgets its runs' tails.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    Event,
    EventRequest,
    EventResult,
    PlannedWrites,
    QueueMessageRequest,
    Run,
    WorldError,
    plan_events,
    run_id_for_create,
)
from wfkit.worlds.local.db import (
    ThreadConnections,
    WriteLockBusy,
    fetch_all,
    translate_error,
    write_transaction,
)
from wfkit.worlds.local.loader import Timestamps, TransactionLoader
from wfkit.worlds.local.sql import CODECS, LocalSql
from wfkit.worlds.local.writes import Statements, plan_statements, run_statements
from wfkit.worlds.sql import decode_events
from wfkit.worlds.sql.tails import RunTail, TailCache, plan_on_tail, qualifies

__all__ = ["EnqueueInTransaction", "LocalEvents", "PreparedGroup"]

EnqueueInTransaction = Callable[[sqlite3.Cursor, Sequence[QueueMessageRequest]], object]


class LocalEvents:
    """``world.events`` of the local world."""

    def __init__(
        self,
        connections: ThreadConnections,
        enqueue: EnqueueInTransaction,
        on_enqueued: Callable[[], None],
    ) -> None:
        self._connections = connections
        self._enqueue = enqueue
        self._on_enqueued = on_enqueued
        self._tails = TailCache()

    def create(self, run_id: str | None, request: EventRequest) -> EventResult:
        """Append one event and update its record; see ``wfkit.worlds.base.Events.create``.

        Raises:
            InvalidEventError: ``run_id`` is None for an event other than run_created.
            EntityConflictError, RunNotFoundError, …: as ``create_batch``.
        """
        return self.create_batch(run_id_for_create(run_id, request), [request])[0]

    def create_batch(
        self,
        run_id: str,
        requests: Sequence[EventRequest],
        *,
        messages: Sequence[QueueMessageRequest] = (),
        expected_last_event_id: str | None = None,
    ) -> list[EventResult]:
        """Append events of one run and enqueue ``messages`` in one transaction.

        See ``wfkit.worlds.base.Events.create_batch``; planned on this process's
        tail of the run when it continues from it (the module's docstring)."""
        write = BatchWrite(run_id, requests, messages, expected_last_event_id)
        try:
            try:
                with write_transaction(self._connections) as cursor:
                    written = self._write_on_tail(cursor, write) or self._write(cursor, write)
            except _PlannedWriteRefused:
                with write_transaction(self._connections) as cursor:
                    written = self._write(cursor, write)
        except BaseException:
            self._tails.forget(run_id)  # refused, or its outcome unknown
            raise
        self._tails.remember(run_id, written.run, written.plan, written.tail)
        if messages:
            self._on_enqueued()
        return written.plan.results

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Several runs' batches in one transaction (the module's docstring); see
        ``wfkit.worlds.base.Events.create_batches``."""
        outcomes = self._write_prepared(writes, self._plan_before_lock(writes), wait=True)
        assert outcomes is not None  # waiting for the lock, it always writes
        return outcomes

    def prepare_batches(self, writes: Sequence[BatchWrite]) -> PreparedGroup:
        """``writes`` planned before the write lock, to be written by
        ``PreparedGroup.write`` (``wfkit.worlds.base.PreparedBatches``)."""
        return PreparedGroup(
            functools.partial(self._write_prepared, writes, self._plan_before_lock(writes))
        )

    def _write_prepared(
        self, writes: Sequence[BatchWrite], planned: Sequence[_Planned | None], *, wait: bool
    ) -> list[BatchOutcome] | None:
        """Write a group planned before the lock; None, having written nothing, when
        ``wait`` is False and another process holds the lock."""
        try:
            try:
                with write_transaction(self._connections, wait=wait) as cursor:
                    written = self._write_group(cursor, writes, planned)
            except _PlannedWriteRefused:
                with write_transaction(self._connections) as cursor:
                    written = [self._write_or_refuse(cursor, write) for write in writes]
        except WriteLockBusy:
            return None  # nothing written: the tails still hold
        except BaseException:
            for write in writes:
                self._tails.forget(write.run_id)  # the outcome is unknown
            raise
        outcomes: list[BatchOutcome] = []
        for write, done in zip(writes, written, strict=True):
            if isinstance(done, WorldError):
                self._tails.forget(write.run_id)
                outcomes.append(done)
            else:
                self._tails.remember(write.run_id, done.run, done.plan, done.tail)
                outcomes.append(done.plan.results)
        if any(w.messages for w, o in zip(writes, outcomes, strict=True) if isinstance(o, list)):
            self._on_enqueued()
        return outcomes

    def _plan_before_lock(self, writes: Sequence[BatchWrite]) -> list[_Planned | None]:
        """Plan, without the write lock, each write that may be
        (``_plannable_before_lock``): on this process's tail of its run when it
        continues from it, the others in one read transaction; None for the writes
        not plannable and for a write whose plan failed (it is planned again under
        the lock, which gives its error)."""
        planned: list[_Planned | None] = [None] * len(writes)
        chosen: list[int] = []
        for index, write in enumerate(writes):
            if _plannable_before_lock(write):
                planned[index] = self._plan_on_tail(write)
                if planned[index] is None:
                    chosen.append(index)
        if not chosen:
            return planned
        cursor = self._connections.get().cursor()
        cursor.row_factory = sqlite3.Row
        try:
            cursor.execute("BEGIN")
            try:
                for index in chosen:
                    planned[index] = _plan(cursor, writes[index])
            finally:
                cursor.execute("COMMIT")
        except sqlite3.Error:
            for index in chosen:
                planned[index] = None  # under the lock, each write meets its own error
        finally:
            cursor.close()
        return planned

    def _plan_on_tail(self, write: BatchWrite) -> _Planned | None:
        """``write`` planned on this process's tail of its run, read from nothing;
        None when it does not continue from the tail or the tail cannot answer it.
        The caller must confirm under the lock that the run's last event is still
        ``write.expected_last_event_id`` (the module's docstring)."""
        expected = write.expected_last_event_id
        if expected is None or not qualifies(write.requests):
            return None
        tail = self._tails.get(write.run_id, expected)
        if tail is None:
            return None
        plan = plan_on_tail(write.run_id, tail, write.requests, expected, writes_release=True)
        if plan is None:
            return None
        return _Planned(plan_statements(plan), plan, tail.run, tail)

    def _write_on_tail(self, cursor: sqlite3.Cursor, write: BatchWrite) -> _Planned | None:
        """Write ``write`` planned on the tail, in the open write transaction, if the
        run's log still ends where the tail does; None, having written nothing,
        when it must be planned on what it reads.

        Raises:
            _PlannedWriteRefused: a constraint refused it (the transaction must be
                rolled back).
        """
        planned = self._plan_on_tail(write)
        if planned is None:
            return None
        sql = LocalSql.select_last_event_id
        row = cursor.execute(sql.sql, sql.args({"run_id": write.run_id})).fetchone()
        if row is None or row[0] != write.expected_last_event_id:
            return None
        self._run_planned(cursor, write, planned)
        return planned

    def _run_planned(self, cursor: sqlite3.Cursor, write: BatchWrite, planned: _Planned) -> None:
        """Run a write planned before the lock and checked under it, and enqueue its
        messages, in the open write transaction.

        Raises:
            _PlannedWriteRefused: a constraint refused a row (the transaction must
                be rolled back).
        """
        try:
            run_statements(cursor, planned.statements)
            if write.messages:
                self._enqueue(cursor, write.messages)
        except sqlite3.IntegrityError as exc:
            raise _PlannedWriteRefused from exc

    def _write_group(
        self,
        cursor: sqlite3.Cursor,
        writes: Sequence[BatchWrite],
        planned: Sequence[_Planned | None],
    ) -> list[_Planned | WorldError]:
        """Write a group in the open write transaction: each write planned before
        the lock whose run has not moved on as planned, every other one planned
        again here (``_write_or_refuse``).

        Raises:
            _PlannedWriteRefused: a constraint refused a write planned before the
                lock (the transaction must be rolled back).
        """
        last_event_ids: dict[str, str | None] = {}
        run_ids = list(
            dict.fromkeys(w.run_id for w, p in zip(writes, planned, strict=True) if p is not None)
        )
        if run_ids:
            sql = LocalSql.last_event_ids
            rows = cursor.execute(sql.sql, sql.args({"run_ids": json.dumps(run_ids)}))
            last_event_ids = {run_id: last for run_id, last in rows}
        outcomes: list[_Planned | WorldError] = []
        written: set[str] = set()  # runs this group has written to (or tried)
        for write, plan in zip(writes, planned, strict=True):
            run_id = write.run_id
            if (
                plan is not None
                and run_id not in written
                and last_event_ids.get(run_id) == write.expected_last_event_id
            ):
                self._run_planned(cursor, write, plan)
                outcomes.append(plan)
            else:
                outcomes.append(self._write_or_refuse(cursor, write))
            written.add(run_id)
        return outcomes

    def _write_or_refuse(self, cursor: sqlite3.Cursor, write: BatchWrite) -> _Planned | WorldError:
        """One write of a group under its own savepoint: what it wrote, or the error
        that refused it (its savepoint rolled back: nothing of it is written)."""
        cursor.execute("SAVEPOINT wfkit_write")
        try:
            written = self._write(cursor, write)
        except (WorldError, sqlite3.IntegrityError) as exc:
            cursor.execute("ROLLBACK TO wfkit_write")
            cursor.execute("RELEASE wfkit_write")
            return exc if isinstance(exc, WorldError) else _refusal(exc)
        cursor.execute("RELEASE wfkit_write")
        return written

    def _write(self, cursor: sqlite3.Cursor, write: BatchWrite) -> _Planned:
        """Check and write one batch (and enqueue its messages) in the open transaction,
        planned on the records it reads.

        Raises:
            WorldError: the lifecycle rules refuse it, before anything is written.
            sqlite3.IntegrityError: a constraint refused a row (a duplicate).
        """
        timestamps = Timestamps()
        loader = TransactionLoader(cursor, timestamps)
        expected = write.expected_last_event_id
        loader.prefetch(write.run_id, write.requests, expected is not None)
        plan = plan_events(loader, write.run_id, write.requests, expected_last_event_id=expected)
        statements = plan_statements(plan, timestamps)
        run_statements(cursor, statements)
        if write.messages:
            self._enqueue(cursor, write.messages)
        return _Planned(statements, plan, _run_for_tail(loader, write.run_id, plan), None)

    def list(
        self, run_id: str, *, after_event_id: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """The run's events in append order, after ``after_event_id`` if given (an
        id not in the log compares as a string: ids sort in creation order)."""
        limit_rows = -1 if limit is None else limit
        if after_event_id is None:
            rows = fetch_all(
                self._connections, LocalSql.list_events, run_id=run_id, limit=limit_rows
            )
        else:
            rows = fetch_all(
                self._connections,
                LocalSql.list_events_after,
                run_id=run_id,
                after=after_event_id,
                limit=limit_rows,
            )
        events = decode_events(CODECS.event, rows)
        if after_event_id is None:
            self._tails.seed(run_id, events, limit)  # one statement: one snapshot
        return events


class PreparedGroup:
    """A group planned before the write lock (``LocalEvents.prepare_batches``), a
    ``wfkit.worlds.base.PreparedBatches``."""

    __slots__ = ("_write",)

    def __init__(self, write: Callable[..., list[BatchOutcome] | None]) -> None:
        self._write = write

    def write(self, *, wait: bool = True) -> list[BatchOutcome] | None:
        """Write the group as ``create_batches`` does; with ``wait`` False, None
        (nothing written) when another process holds the write lock. A group that
        waited a while is still checked run by run under the lock (the module's
        docstring): a run that moved on meanwhile is planned again there."""
        return self._write(wait=wait)


@dataclass(frozen=True, slots=True)
class _Planned:
    """A planned write: the statements that write it, its plan, and what
    ``TailCache.remember`` needs once it commits: the run's full record as the plan
    saw it (None: the plan's own record of the run is the one) and the tail it was
    planned on, if any."""

    statements: Statements
    plan: PlannedWrites
    run: Run | None
    tail: RunTail | None


class _PlannedWriteRefused(Exception):
    """A constraint refused a write planned before the lock or on a tail (the
    module's docstring: a step the tail took for new, or a store changed behind the
    world's back); the
    transaction is rolled back and the writes planned again on what they read."""


_READS_OTHER_RUNS = frozenset({"run_created", "hook_created"})


def _plannable_before_lock(write: BatchWrite) -> bool:
    """Whether a write may be planned before the lock: it names the last event it
    expects, and none of its requests reads beyond its own run's rows (the module's
    docstring)."""
    return write.expected_last_event_id is not None and not any(
        request.event_type in _READS_OTHER_RUNS for request in write.requests
    )


def _plan(cursor: sqlite3.Cursor, write: BatchWrite) -> _Planned | None:
    """Plan one write in the open read transaction; None when the rules refuse it
    as things stand (under the lock it is planned again and meets its error)."""
    timestamps = Timestamps()
    loader = TransactionLoader(cursor, timestamps)
    expected = write.expected_last_event_id
    try:
        loader.prefetch(write.run_id, write.requests, True)
        plan = plan_events(loader, write.run_id, write.requests, expected_last_event_id=expected)
    except WorldError:
        return None
    return _Planned(
        plan_statements(plan, timestamps), plan, _run_for_tail(loader, write.run_id, plan), None
    )


def _run_for_tail(loader: TransactionLoader, run_id: str, plan: PlannedWrites) -> Run | None:
    """The run's full record for the tail cache: None when the plan holds its own
    (it created or changed the run), else the record as ``loader`` read it (one
    more SELECT when the plan read only the run's status: a write that missed the
    tail, so that the run's next writes hit it)."""
    if run_id in plan.new_runs or run_id in plan.changed_runs:
        return None
    return loader.load_run(run_id)


def _refusal(error: sqlite3.IntegrityError) -> WorldError:
    """The world error a constraint's refusal is (as ``write_transaction`` makes it)."""
    translated = translate_error(error)
    assert translated is not None  # an IntegrityError always translates
    translated.__cause__ = error
    return translated
