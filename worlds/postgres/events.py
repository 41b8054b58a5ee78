"""``world.events`` of the Postgres world: append events and materialize them.

One transaction per ``create_batch``:

1. ``SELECT … FROM runs WHERE run_id = … FOR UPDATE`` locks the run (serializing
   every writer of that run, on any machine) and returns its record together
   with ``last_event_id``, the log's tail, for the optimistic-concurrency check.
   (The tail lives on the run row rather than in a subquery, because a
   statement's snapshot predates the lock it waited for; the locked row itself
   is re-read at its newest version.) In the same round trip (pipelined after
   ``BEGIN`` and the lock, so with a snapshot taken after it) one ``SELECT`` per
   entity kind prefetches the steps, hooks and waits the batch refers to.
2. ``wfkit.worlds.base.plan_events`` — the lifecycle rules every world shares — checks
   the transitions against those records and plans the writes.
3. ``writes.plan_statements`` turns the plan into (usually) one statement
   writing events, records and queue messages, sent with ``COMMIT`` in the
   second round trip; the queue trigger NOTIFYs in the same transaction.

``create_batches`` writes several runs' batches in one transaction the same
way (``groups``).

A refused transition raises before anything is written; unique violations,
deadlocks and dropped connections are translated (and retried) by
``errors.run_transaction``.

A batch of step events that continues, with ``expected_last_event_id``, from
this process's own last write to the run (a sequential step's hot path) skips
step 1: it is checked against the records that write left (``tails``) and
written by one guarded statement, its own transaction (autocommit: no
``BEGIN``, no ``COMMIT``): one round trip. If the guard finds the log moved on,
or anything else is in doubt, the batch runs as above. A batch creating its run
(``start``) reads nothing either (``tails.plan_new_run``): one statement, in one
round trip. The tail also takes a batch starting the run, or ending it when the
run holds no hook or wait to release (``tails.RunTail.releases_nothing``); a
read of the whole log (a worker replaying a run) seeds the run's tail from its
fold (``tails.TailCache.seed``), so the worker's first write to the run takes
it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    Event,
    EventRequest,
    EventResult,
    PlannedWrites,
    QueueMessageRequest,
    Run,
    create_batches_one_by_one,
    plan_events,
    run_id_for_create,
)
from wfkit.worlds.postgres.errors import DatabaseUnavailableError
from wfkit.worlds.postgres.groups import GroupWriter
from wfkit.worlds.postgres.loader import LoaderSql, TransactionLoader, message_rows
from wfkit.worlds.postgres.session import (
    Session,
    execute_alone,
    fetch_rows,
    fetch_scalar,
    run_transaction,
)
from wfkit.worlds.postgres.sql import CODECS, TableNames
from wfkit.worlds.postgres.writes import plan_statements
from wfkit.worlds.sql import decode_events
from wfkit.worlds.sql.tails import (
    RunTail,
    TailCache,
    plan_new_run,
    plan_on_tail,
    qualifies,
)

__all__ = ["LoaderSql", "PostgresEvents", "TransactionLoader", "message_rows"]


class PostgresEvents:
    """``world.events`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames, sql: LoaderSql) -> None:
        self._engine = engine
        self._names = names
        self._sql = sql
        self._tails = TailCache()
        self._groups = GroupWriter(
            engine, names, sql, self._tails, lambda writes: create_batches_one_by_one(self, writes)
        )

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

        Args:
            run_id: the run every request belongs to.
            requests: the events, applied in order.
            messages: queue messages to enqueue atomically with the events.
            expected_last_event_id: refuse unless this is the run's last event.

        Returns:
            One EventResult per request.

        Raises:
            EntityConflictError: a refused transition, a duplicate creation, or a
                stale ``expected_last_event_id``; nothing is written.
            RunNotFoundError, StepNotFoundError, HookNotFoundError, WaitNotFoundError:
                the event's entity does not exist.
            InvalidEventError: a malformed request or a non-JSON payload.
        """
        if expected_last_event_id is None:
            created = self._create_run(run_id, requests, messages)
            if created is not None:
                return created
        if expected_last_event_id is not None and not messages and qualifies(requests):
            tail = self._tails.get(run_id, expected_last_event_id)
            if tail is not None:
                written = self._append_from_tail(run_id, tail, requests, expected_last_event_id)
                if written is not None:
                    return written
        rows = message_rows(messages)
        names, sql = self._names, self._sql

        def append(session: Session) -> tuple[list[EventResult], Run | None, PlannedWrites]:
            loader = TransactionLoader(session, names, sql)
            loader.lock_and_prefetch(run_id, requests)
            plan = plan_events(
                loader, run_id, requests, expected_last_event_id=expected_last_event_id
            )
            session.commit(plan_statements(names, run_id, plan, rows))
            return plan.results, loader.load_run(run_id), plan

        try:
            results, run, plan = run_transaction(self._engine, append)
        except BaseException:
            self._tails.forget(run_id)
            raise
        self._tails.remember(run_id, run, plan, None)
        return results

    def _create_run(
        self, run_id: str, requests: Sequence[EventRequest], messages: Sequence[QueueMessageRequest]
    ) -> list[EventResult] | None:
        """Write a batch that creates its run without reading first (``tails.plan_new_run``):
        one statement, its own transaction, in one round trip. None when it must go
        the ordinary way (nothing written).

        Raises:
            EntityConflictError: the run id or its idempotency key is taken.
        """
        plan = plan_new_run(run_id, requests)
        if plan is None:
            return None
        statements = plan_statements(self._names, run_id, plan, message_rows(messages))
        if len(statements) == 1:
            execute_alone(self._engine, *statements[0])
            return plan.results

        def append(session: Session) -> None:
            session.commit(statements)

        run_transaction(self._engine, append)
        return plan.results

    def _append_from_tail(
        self,
        run_id: str,
        tail: RunTail,
        requests: Sequence[EventRequest],
        expected_last_event_id: str,
    ) -> list[EventResult] | None:
        """Write a step batch planned on this process's ``tail`` of the run in one
        guarded round trip; None when it must go the ordinary way (nothing written)."""
        plan = plan_on_tail(run_id, tail, requests, expected_last_event_id)
        if plan is None:
            return None  # the ordinary path reads the records and gives the answer
        [statement] = plan_statements(
            self._names, run_id, plan, guard_last_event_id=expected_last_event_id
        )

        try:
            # One statement is its own transaction: no BEGIN, COMMIT or pipeline
            # (a third of the client CPU of sending the three).
            written = int(execute_alone(self._engine, *statement)[0]["written"])
        except EntityConflictError:
            written = 0  # a step this cache did not hold exists after all
        except DatabaseUnavailableError:
            self._tails.forget(run_id)
            # The connection dropped with the statement in flight: the log says whether
            # it landed (the guard makes a late landing impossible to miss: the
            # ordinary path waits for the row lock and sees the moved tail).
            tail_now = fetch_scalar(
                self._engine,
                f"SELECT last_event_id FROM {self._names.runs} WHERE run_id = %(run_id)s",
                {"run_id": run_id},
            )
            written = int(tail_now == plan.events[-1].event_id)
        except BaseException:
            self._tails.forget(run_id)
            raise
        if not written:
            self._tails.forget(run_id)
            return None
        self._tails.remember(run_id, tail.run, plan, tail)
        return plan.results

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """Several runs' batches in one transaction (``groups``); see
        ``wfkit.worlds.base.Events.create_batches``."""
        return self._groups.write(writes)

    def list(
        self, run_id: str, *, after_event_id: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """The run's events in append order, after ``after_event_id`` when given.

        An ``after_event_id`` that is not in the log falls back to id order."""
        names = self._names
        if after_event_id is None:
            sql = (
                f"SELECT * FROM {names.events} WHERE run_id = %(run_id)s"
                " ORDER BY seq LIMIT %(limit)s"
            )
        else:
            # Two index range scans on (run_id, seq), one of which a one-time
            # filter switches off: the call is O(new events), not O(log), which
            # matters because a worker catches up with it after every step.
            sql = (
                f"WITH a AS (SELECT seq FROM {names.events}"
                " WHERE event_id = %(after)s AND run_id = %(run_id)s)"
                f" (SELECT * FROM {names.events} WHERE run_id = %(run_id)s"
                " AND seq > (SELECT seq FROM a)"
                f" UNION ALL SELECT * FROM {names.events} WHERE run_id = %(run_id)s"
                " AND event_id > %(after)s AND NOT EXISTS (SELECT 1 FROM a))"
                " ORDER BY seq LIMIT %(limit)s"
            )
        params = {"run_id": run_id, "after": after_event_id, "limit": limit}
        events = decode_events(CODECS.event, fetch_rows(self._engine, sql, params))
        if after_event_id is None:
            self._tails.seed(run_id, events, limit)  # one statement: one snapshot
        return events
