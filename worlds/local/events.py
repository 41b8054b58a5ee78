"""``world.events`` of the local world: the event log.

A write is one ``BEGIN IMMEDIATE`` transaction: load the few rows the requests
touch (``loader``: the run, and all steps of the batch in one query), let
``wfkit.worlds.base.plan_events`` check the lifecycle rules, then write the planned
events and records (``writes``) and any queue messages.

``create_batches`` (group commit across runs) writes several runs' batches in ONE
such transaction, each under its own SAVEPOINT: a write the rules (or a
constraint) refuse is rolled back to its savepoint and answered with its error,
the others commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    Event,
    EventRequest,
    EventResult,
    QueueMessageRequest,
    WorldError,
    plan_events,
    run_id_for_create,
)
from wfkit.worlds.local.db import (
    ThreadConnections,
    fetch_all,
    translate_error,
    write_transaction,
)
from wfkit.worlds.local.loader import Timestamps, TransactionLoader
from wfkit.worlds.local.sql import CODECS, LocalSql
from wfkit.worlds.local.writes import write_plan
from wfkit.worlds.sql import decode_events

__all__ = ["EnqueueInTransaction", "LocalEvents"]

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

        See ``wfkit.worlds.base.Events.create_batch``."""
        with write_transaction(self._connections) as cursor:
            results = self._write(
                cursor, BatchWrite(run_id, requests, messages, expected_last_event_id)
            )
        if messages:
            self._on_enqueued()
        return results

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Several runs' batches in one transaction, one SAVEPOINT each; see
        ``wfkit.worlds.base.Events.create_batches``."""
        outcomes: list[BatchOutcome] = []
        with write_transaction(self._connections) as cursor:
            for write in writes:
                outcomes.append(self._write_or_refuse(cursor, write))
        if any(w.messages for w, o in zip(writes, outcomes, strict=True) if isinstance(o, list)):
            self._on_enqueued()
        return outcomes

    def _write_or_refuse(self, cursor: sqlite3.Cursor, write: BatchWrite) -> BatchOutcome:
        """One write of a group under its own savepoint: its results, or the error
        that refused it (its savepoint rolled back: nothing of it is written)."""
        cursor.execute("SAVEPOINT wfkit_write")
        try:
            results = self._write(cursor, write)
        except (WorldError, sqlite3.IntegrityError) as exc:
            cursor.execute("ROLLBACK TO wfkit_write")
            cursor.execute("RELEASE wfkit_write")
            return exc if isinstance(exc, WorldError) else _refusal(exc)
        cursor.execute("RELEASE wfkit_write")
        return results

    def _write(self, cursor: sqlite3.Cursor, write: BatchWrite) -> list[EventResult]:
        """Check and write one batch (and enqueue its messages) in the open transaction.

        Raises:
            WorldError: the lifecycle rules refuse it, before anything is written.
            sqlite3.IntegrityError: a constraint refused a row (a duplicate).
        """
        timestamps = Timestamps()
        loader = TransactionLoader(cursor, timestamps)
        expected = write.expected_last_event_id
        loader.prefetch(write.run_id, write.requests, expected is not None)
        plan = plan_events(loader, write.run_id, write.requests, expected_last_event_id=expected)
        write_plan(cursor, plan, timestamps)
        if write.messages:
            self._enqueue(cursor, write.messages)
        return plan.results

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
        return decode_events(CODECS.event, rows)


def _refusal(error: sqlite3.IntegrityError) -> WorldError:
    """The world error a constraint's refusal is (as ``write_transaction`` makes it)."""
    translated = translate_error(error)
    assert translated is not None  # an IntegrityError always translates
    translated.__cause__ = error
    return translated
