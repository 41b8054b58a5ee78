"""``world.events`` of the local world: the event log.

A write is one ``BEGIN IMMEDIATE`` transaction: load the few rows the requests
touch (``loader``: the run, and all steps of the batch in one query), let
``wfkit.worlds.base.plan_events`` check the lifecycle rules, then write the planned
events and records (``writes``) and any queue messages.
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
    create_batches_one_by_one,
    plan_events,
    run_id_for_create,
)
from wfkit.worlds.local.db import ThreadConnections, fetch_all, write_transaction
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
        timestamps = Timestamps()
        with write_transaction(self._connections) as cursor:
            loader = TransactionLoader(cursor, timestamps)
            loader.prefetch(run_id, requests, expected_last_event_id is not None)
            plan = plan_events(
                loader, run_id, requests, expected_last_event_id=expected_last_event_id
            )
            write_plan(cursor, plan, timestamps)
            if messages:
                self._enqueue(cursor, messages)
        if messages:
            self._on_enqueued()
        return plan.results

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Several runs' batches; see ``wfkit.worlds.base.Events.create_batches``."""
        return create_batches_one_by_one(self, writes)

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
