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

A refused transition raises before anything is written; unique violations,
deadlocks and dropped connections are translated (and retried) by
``errors.run_transaction``.

A batch of step events that continues, with ``expected_last_event_id``, from
this process's own last write to the run (a sequential step's hot path) skips
step 1: it is checked against the records that write left (``tails``) and
written by one guarded statement sent with ``BEGIN`` and ``COMMIT``: one round
trip. If the guard finds the log moved on, or anything else is in doubt, the
batch runs as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    Event,
    EventRequest,
    EventResult,
    EventType,
    Hook,
    PlannedWrites,
    QueueMessageRequest,
    Run,
    Step,
    Wait,
    WorldError,
    create_batches_one_by_one,
    new_id,
    normalize_json,
    plan_events,
    run_id_for_create,
)
from wfkit.worlds.postgres.errors import DatabaseUnavailableError
from wfkit.worlds.postgres.session import Session, Statement, fetch_scalar, run_transaction
from wfkit.worlds.postgres.sql import CODECS, CompiledSql, TableNames, compile_statement
from wfkit.worlds.postgres.tails import RunTail, TailCache, TailLoader, TailMiss, qualifies
from wfkit.worlds.postgres.writes import plan_statements
from wfkit.worlds.sql import RecordStatements, decode_events, dump_json

__all__ = ["LoaderSql", "PostgresEvents", "TransactionLoader", "message_rows"]

_PAYLOADS = ("input", "output", "error")
_RUN_WITHOUT_PAYLOADS = ", ".join(
    f"NULL AS {name}" if name in _PAYLOADS else name
    for name in (*CODECS.run.columns, "last_event_id")
)


@dataclass(frozen=True)
class LoaderSql:
    """The shared record lookups (``wfkit.worlds.sql.RecordStatements``) of one
    world, compiled for psycopg."""

    run: CompiledSql
    step: CompiledSql
    hook: CompiledSql
    active_hook_by_token: CompiledSql
    wait: CompiledSql
    waits_of_run: CompiledSql
    latest_event_of_type: CompiledSql

    @classmethod
    def build(cls, statements: RecordStatements) -> LoaderSql:
        """Compile the lookups of ``statements`` (one world's schema)."""
        return cls(
            run=compile_statement(statements.run),
            step=compile_statement(statements.step),
            hook=compile_statement(statements.hook),
            active_hook_by_token=compile_statement(statements.active_hook_by_token),
            wait=compile_statement(statements.wait),
            waits_of_run=compile_statement(statements.waits_of_run),
            latest_event_of_type=compile_statement(statements.latest_event_of_type),
        )


class TransactionLoader:
    """A ``wfkit.worlds.base.RecordLoader`` reading through one open transaction.

    ``lock_and_prefetch`` fills caches in one round trip; the lookups the
    lifecycle rules make afterwards hit the caches (a miss queries)."""

    def __init__(self, session: Session, names: TableNames, sql: LoaderSql) -> None:
        self._session = session
        self._names = names
        self._sql = sql
        self._runs: dict[str, Run | None] = {}
        self._last_event_ids: dict[str, str | None] = {}
        self._steps: dict[tuple[str, str], Step | None] = {}
        self._hooks: dict[str, Hook | None] = {}
        self._waits: dict[tuple[str, str], Wait | None] = {}
        self._tokens: dict[str, Hook | None] = {}

    def _rows(self, sql: CompiledSql, **values: Any) -> list[dict[str, Any]]:
        return self._session.rows(sql.sql, sql.params(values))

    def lock_and_prefetch(self, run_id: str, requests: Sequence[EventRequest]) -> None:
        """Lock the run's row until the transaction ends and load, in the same round
        trip, the records ``requests`` refer to."""
        names = self._names
        ids: dict[str, list[str]] = {"step": [], "hook": [], "wait": []}
        run_events = False
        for request in requests:
            kind = request.event_type.split("_", 1)[0]
            if kind in ids and request.correlation_id:
                ids[kind].append(request.correlation_id)
            run_events = run_events or kind == "run"
        # A batch without run events only checks the run's status, and never
        # returns or writes the run record: skip its (possibly large) payloads.
        columns = "*" if run_events else _RUN_WITHOUT_PAYLOADS
        statements: list[Statement] = [
            (
                f"SELECT {columns} FROM {names.runs} WHERE run_id = %(run_id)s FOR UPDATE",
                {"run_id": run_id},
            )
        ]
        kinds = [kind for kind, found in ids.items() if found]
        for kind in kinds:
            table, key = {
                "step": (names.steps, "step_id"),
                "hook": (names.hooks, "hook_id"),
                "wait": (names.waits, "wait_id"),
            }[kind]
            run_filter = "" if kind == "hook" else "run_id = %(run_id)s AND "
            statements.append(
                (
                    f"SELECT * FROM {table} WHERE {run_filter}{key} = ANY(%(ids)s::text[])",
                    {"run_id": run_id, "ids": ids[kind]},
                )
            )
        results = self._session.query(*statements)
        run_rows = results[0]
        self._runs[run_id] = CODECS.run.from_row(run_rows[0]) if run_rows else None
        self._last_event_ids[run_id] = run_rows[0]["last_event_id"] if run_rows else None
        for kind, rows in zip(kinds, results[1:], strict=True):
            if kind == "step":
                self._steps.update({(run_id, i): None for i in ids[kind]})
                self._steps.update({(run_id, r["step_id"]): CODECS.step.from_row(r) for r in rows})
            elif kind == "hook":
                self._hooks.update(dict.fromkeys(ids[kind]))
                self._hooks.update({r["hook_id"]: CODECS.hook.from_row(r) for r in rows})
            else:
                self._waits.update({(run_id, i): None for i in ids[kind]})
                self._waits.update({(run_id, r["wait_id"]): CODECS.wait.from_row(r) for r in rows})

    def load_run(self, run_id: str) -> Run | None:
        if run_id not in self._runs:
            rows = self._rows(self._sql.run, run_id=run_id)
            self._runs[run_id] = CODECS.run.from_row(rows[0]) if rows else None
        return self._runs[run_id]

    def load_last_event_id(self, run_id: str) -> str | None:
        if run_id not in self._last_event_ids:
            self.lock_and_prefetch(run_id, ())
        return self._last_event_ids[run_id]

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        key = (run_id, step_id)
        if key not in self._steps:
            rows = self._rows(self._sql.step, run_id=run_id, step_id=step_id)
            self._steps[key] = CODECS.step.from_row(rows[0]) if rows else None
        return self._steps[key]

    def load_hook(self, hook_id: str) -> Hook | None:
        if hook_id not in self._hooks:
            rows = self._rows(self._sql.hook, hook_id=hook_id)
            self._hooks[hook_id] = CODECS.hook.from_row(rows[0]) if rows else None
        return self._hooks[hook_id]

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        # Cached: under READ COMMITTED a second query could see another run's hook
        # committed meanwhile, and the rules must see one consistent answer (a
        # race is settled by the unique index and a retry instead).
        if token not in self._tokens:
            rows = self._rows(self._sql.active_hook_by_token, token=token)
            self._tokens[token] = CODECS.hook.from_row(rows[0]) if rows else None
        return self._tokens[token]

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        key = (run_id, wait_id)
        if key not in self._waits:
            rows = self._rows(self._sql.wait, run_id=run_id, wait_id=wait_id)
            self._waits[key] = CODECS.wait.from_row(rows[0]) if rows else None
        return self._waits[key]

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        rows = self._rows(self._sql.waits_of_run, run_id=run_id)
        waits = [CODECS.wait.from_row(row) for row in rows]
        self._waits.update({(run_id, wait.wait_id): wait for wait in waits})
        return waits

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        rows = self._rows(self._sql.latest_event_of_type, run_id=run_id, event_type=event_type)
        return decode_events(CODECS.event, rows[:1])[0] if rows else None


def message_rows(messages: Sequence[QueueMessageRequest]) -> list[dict[str, Any]]:
    """Rows for ``writes.insert_messages_sql`` (payloads JSON-checked before any write).

    Raises:
        InvalidEventError: a payload is not JSON-serializable.
    """
    rows = []
    for message in messages:
        payload = normalize_json(message.payload)
        run_id = payload.get("run_id")
        rows.append(
            {
                "message_id": new_id("msg"),
                "queue": message.queue,
                "payload": dump_json(payload),
                "idempotency_key": message.idempotency_key,
                "run_id": run_id if isinstance(run_id, str) else None,
                "delay": max(0.0, float(message.delay_seconds)),
            }
        )
    return rows


class PostgresEvents:
    """``world.events`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames, sql: LoaderSql) -> None:
        self._engine = engine
        self._names = names
        self._sql = sql
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
        cacheable = not messages and qualifies(requests)
        if cacheable and expected_last_event_id is not None:
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
        if cacheable:
            self._tails.remember(run_id, run, plan, None)
        return results

    def _append_from_tail(
        self,
        run_id: str,
        tail: RunTail,
        requests: Sequence[EventRequest],
        expected_last_event_id: str,
    ) -> list[EventResult] | None:
        """Write a step batch planned on this process's ``tail`` of the run in one
        guarded round trip; None when it must go the ordinary way (nothing written)."""
        try:
            plan = plan_events(
                TailLoader(run_id, tail, requests),
                run_id,
                requests,
                expected_last_event_id=expected_last_event_id,
            )
        except (TailMiss, WorldError):
            return None  # the ordinary path reads the records and gives the answer
        if plan.changed_runs or plan.released_runs:
            return None
        statements = plan_statements(
            self._names, run_id, plan, guard_last_event_id=expected_last_event_id
        )

        def append(session: Session) -> int:
            return int(session.commit(statements)[-1][0]["written"])

        try:
            written = run_transaction(self._engine, append)
        except EntityConflictError:
            written = 0  # a step this cache did not hold exists after all
        except DatabaseUnavailableError:
            self._tails.forget(run_id)
            # The connection dropped with COMMIT in flight: the log says whether
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
        """Several runs' batches; see ``wfkit.worlds.base.Events.create_batches``."""
        return create_batches_one_by_one(self, writes)

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

        def read(session: Session) -> list[Event]:
            return decode_events(CODECS.event, session.rows(sql, params))

        return run_transaction(self._engine, read, transactional=False)
