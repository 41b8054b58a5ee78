"""The local world's event log and materialized records.

A write is one ``BEGIN IMMEDIATE`` transaction: load the few rows the requests
touch (the run, and all steps of the batch in one query), let
``wfkit.worlds.base.plan_events`` check the lifecycle rules, then write the planned
events and records with prepared Core statements (inserts for new entities, so
the primary keys and partial unique indexes back the checks).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from wfkit.worlds.base import (
    Event,
    EventRequest,
    EventResult,
    EventType,
    Hook,
    HookNotFoundError,
    InvalidEventError,
    PlannedWrites,
    QueueMessageRequest,
    Run,
    RunNotFoundError,
    RunStatus,
    Step,
    StepNotFoundError,
    Wait,
    WaitNotFoundError,
    new_id,
    plan_events,
)
from wfkit.worlds.local.db import (
    PreparedSql,
    ThreadConnections,
    fetch_all,
    translated_errors,
    write_transaction,
)
from wfkit.worlds.local.schema import (
    dumps,
    event_from_row,
    events_table,
    hook_from_row,
    hook_row,
    hooks_table,
    run_from_row,
    run_row,
    runs_table,
    step_from_row,
    steps_table,
    wait_from_row,
    wait_row,
    waits_table,
)

_E, _R, _S, _H, _W = events_table.c, runs_table.c, steps_table.c, hooks_table.c, waits_table.c
_ROWID: Any = literal_column("rowid")  # insertion order = creation order

_SELECT_RUN = select(runs_table).where(_R.run_id == bindparam("run_id"))
_SELECT_STEP = select(steps_table).where(
    _S.run_id == bindparam("run_id"), _S.step_id == bindparam("step_id")
)
_SELECT_HOOK = select(hooks_table).where(_H.hook_id == bindparam("hook_id"))
_SELECT_ACTIVE_TOKEN = select(hooks_table).where(
    _H.token == bindparam("token"), _H.status == "active"
)
_SELECT_WAIT = select(waits_table).where(
    _W.run_id == bindparam("run_id"), _W.wait_id == bindparam("wait_id")
)


def _columns_except(table: Any, *keys: str) -> list[str]:
    return [key for key in table.c.keys() if key not in keys]


# What a transition can change; updates write only these (never re-encode inputs).
_RUN_MUTABLE = ["status", "output", "error", "updated_at", "started_at", "completed_at"]
_STEP_MUTABLE = [
    "status",
    "output",
    "error",
    "attempt",
    "retry_after",
    "updated_at",
    "started_at",
    "completed_at",
]
_HOOK_MUTABLE = ["status", "updated_at"]
_WAIT_MUTABLE = ["status", "updated_at", "completed_at"]


def _changes(record: Any, columns: list[str], **keys: Any) -> dict[str, Any]:
    """The UPDATE parameters of a changed record: its mutable columns and its keys."""
    values: dict[str, Any] = {}
    for column in columns:
        value = getattr(record, column)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif column in ("output", "error"):
            value = dumps(value)
        values[column] = value
    values.update(keys)
    return values


_AFTER_SEQ = select(_E.seq).where(_E.event_id == bindparam("after")).scalar_subquery()


class _Sql:
    """The statements of the hot paths, compiled once."""

    list_events = PreparedSql(
        select(events_table)
        .where(_E.run_id == bindparam("run_id"))
        .order_by(_E.seq)
        .limit(bindparam("limit"))
    )
    list_events_after = PreparedSql(
        select(events_table)
        .where(
            _E.run_id == bindparam("run_id"),
            or_(
                _E.seq > _AFTER_SEQ,
                and_(_AFTER_SEQ.is_(None), _E.event_id > bindparam("after")),
            ),
        )
        .order_by(_E.seq)
        .limit(bindparam("limit"))
    )
    list_steps = PreparedSql(
        select(steps_table).where(_S.run_id == bindparam("run_id")).order_by(_ROWID)
    )
    list_waits = PreparedSql(
        select(waits_table).where(_W.run_id == bindparam("run_id")).order_by(_ROWID)
    )
    list_run_hooks = PreparedSql(
        select(hooks_table).where(_H.run_id == bindparam("run_id")).order_by(_ROWID)
    )

    select_run = PreparedSql(_SELECT_RUN)
    select_run_status = PreparedSql(select(_R.status).where(_R.run_id == bindparam("run_id")))
    select_step = PreparedSql(_SELECT_STEP)
    select_hook = PreparedSql(_SELECT_HOOK)
    select_active_token = PreparedSql(_SELECT_ACTIVE_TOKEN)
    select_wait = PreparedSql(_SELECT_WAIT)
    select_latest_of_type = PreparedSql(
        select(events_table)
        .where(_E.run_id == bindparam("run_id"), _E.event_type == bindparam("event_type"))
        .order_by(_E.seq.desc())
        .limit(1)
    )
    select_last_event_id = PreparedSql(
        select(_E.event_id).where(_E.run_id == bindparam("run_id")).order_by(_E.seq.desc()).limit(1)
    )
    insert_event = PreparedSql(insert(events_table), _columns_except(events_table, "seq"))
    insert_run = PreparedSql(insert(runs_table), runs_table.c.keys())
    insert_step = PreparedSql(insert(steps_table), steps_table.c.keys())
    insert_hook = PreparedSql(insert(hooks_table), hooks_table.c.keys())
    insert_wait = PreparedSql(insert(waits_table), waits_table.c.keys())
    update_run = PreparedSql(
        update(runs_table).where(_R.run_id == bindparam("k_run_id")),
        _RUN_MUTABLE,
    )
    update_step = PreparedSql(
        update(steps_table).where(
            _S.run_id == bindparam("k_run_id"), _S.step_id == bindparam("k_step_id")
        ),
        _STEP_MUTABLE,
    )
    update_hook = PreparedSql(
        update(hooks_table).where(_H.hook_id == bindparam("k_hook_id")),
        _HOOK_MUTABLE,
    )
    update_wait = PreparedSql(
        update(waits_table).where(
            _W.run_id == bindparam("k_run_id"), _W.wait_id == bindparam("k_wait_id")
        ),
        _WAIT_MUTABLE,
    )
    release_hooks = PreparedSql(
        update(hooks_table)
        .where(_H.run_id == bindparam("k_run_id"), _H.status == "active")
        .values(status="disposed", updated_at=bindparam("at"))
    )
    release_waits = PreparedSql(
        update(waits_table)
        .where(_W.run_id == bindparam("k_run_id"), _W.status == "waiting")
        .values(status="completed", updated_at=bindparam("at"), completed_at=bindparam("at"))
    )


EnqueueInTransaction = Callable[[sqlite3.Cursor, Sequence[QueueMessageRequest]], object]


def _checked(sql: PreparedSql, names: Sequence[str]) -> PreparedSql:
    """``sql``, after checking that its positional parameters are ``names`` in order
    (the hot path passes tuples, not mappings)."""
    if sql.names != tuple(names):
        raise RuntimeError(f"unexpected parameters {sql.names} of {sql.sql!r}")
    return sql


def _fixed_then(sql: PreparedSql, names: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """The SQL of ``sql`` and the values of its compiled-in literals (a LIMIT), after
    checking that those come first and ``names`` follow in order."""
    fixed = sql.names[: len(sql.names) - len(names)]
    if sql.names[len(fixed) :] != tuple(names) or any(sql.defaults[n] is None for n in fixed):
        raise RuntimeError(f"unexpected parameters {sql.names} of {sql.sql!r}")
    return sql.sql, tuple(sql.defaults[name] for name in fixed)


_LAST_EVENT_ID = (
    select(_E.event_id)
    .where(_E.run_id == _R.run_id)
    .order_by(_E.seq.desc())
    .limit(1)
    .correlate(runs_table)
    .scalar_subquery()
)


@functools.lru_cache(maxsize=64)
def _prefetch_sql(step_count: int, with_last: bool) -> tuple[str, tuple[Any, ...]]:
    """One statement for what a batch of step events reads: the run's status, its
    last event id (when ``with_last``) and the ``step_count`` steps named
    ``step_0`` … (a LEFT JOIN, so the run comes back even when no step exists).
    No row: the run does not exist. Returns the SQL and the values of its leading
    literal parameters; the step ids and the run id follow them."""
    columns: list[Any] = [_R.status.label("run_status")]
    if with_last:
        columns.append(_LAST_EVENT_ID.label("last_event_id"))
    ids = [f"step_{index}" for index in range(step_count)]
    if ids:
        on = and_(_S.run_id == _R.run_id, _S.step_id.in_([bindparam(name) for name in ids]))
        query = select(*columns, *steps_table.c).select_from(runs_table.outerjoin(steps_table, on))
    else:
        query = select(*columns)
    return _fixed_then(PreparedSql(query.where(_R.run_id == bindparam("run_id"))), [*ids, "run_id"])


_EVENT_COLUMNS = _columns_except(events_table, "seq")
_MAX_ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=_MAX_ROWS_PER_INSERT)
def _insert_events_sql(count: int) -> str:
    """A multi-row INSERT of ``count`` events (parameters row after row)."""
    rows: list[dict[str, Any]] = [
        {c: bindparam(f"{c}_{n}") for c in _EVENT_COLUMNS} for n in range(count)
    ]
    names = [f"{c}_{n}" for n in range(count) for c in _EVENT_COLUMNS]
    return _checked(PreparedSql(insert(events_table).values(rows)), names).sql


_INSERT_STEP = _checked(_Sql.insert_step, steps_table.c.keys()).sql
_UPDATE_STEP = _checked(_Sql.update_step, [*_STEP_MUTABLE, "k_run_id", "k_step_id"]).sql


class _Timestamps:
    """ISO 8601 text of the datetimes of one batch, each formatted once: every
    event and record of a batch shares one ``created_at`` object, and the loaded
    records' times keep the text they were read from (``isoformat`` is a large
    part of a batch's CPU)."""

    __slots__ = ("_texts",)

    def __init__(self) -> None:
        # id -> (the datetime, kept alive so that its id stays its own; its text)
        self._texts: dict[int, tuple[datetime, str]] = {}

    def seed(self, value: datetime | None, text: str | None) -> None:
        """Remember that ``value`` was parsed from ``text``."""
        if value is not None and text is not None:
            self._texts[id(value)] = (value, text)

    def text(self, value: datetime | None) -> str | None:
        """``value.isoformat()`` (None for None)."""
        if value is None:
            return None
        known = self._texts.get(id(value))
        if known is None:
            known = self._texts[id(value)] = (value, value.isoformat())
        return known[1]


class _Loader:
    """RecordLoader over one open write transaction; ``prefetch`` reads the run's
    status, its last event id and the batch's steps in one statement."""

    def __init__(self, cursor: sqlite3.Cursor, timestamps: _Timestamps) -> None:
        self.cursor = cursor
        self.timestamps = timestamps
        self.steps: dict[str, Step | None] = {}
        self.status: tuple[RunStatus | None] | None = None  # (status,) once read
        self.last_event_id: tuple[str | None] | None = None  # (id,) once read

    def _one(self, sql: PreparedSql, **values: Any) -> Any:
        return self.cursor.execute(sql.sql, sql.args(values)).fetchone()

    def prefetch(self, run_id: str, requests: Sequence[EventRequest], with_last: bool) -> None:
        """Read what the requests will ask for in one query: the run's status, its
        last event id (``with_last``) and every step the requests name."""
        step_ids = list(
            dict.fromkeys(
                [
                    r.correlation_id
                    for r in requests
                    if r.correlation_id and r.event_type[:5] == "step_"
                ]
            )
        )
        if not step_ids and not with_last:
            return  # nothing worth a round trip: the loads below ask for what is needed
        sql, fixed = _prefetch_sql(len(step_ids), with_last)
        rows = self.cursor.execute(sql, (*fixed, *step_ids, run_id)).fetchall()
        if not rows:
            return  # no such run: the loads below read each thing on their own
        first = rows[0]
        self.status = (cast(RunStatus, first["run_status"]),)
        if with_last:
            self.last_event_id = (first["last_event_id"],)
        if step_ids:
            self.steps = dict.fromkeys(step_ids)
            for row in rows:
                if row["step_id"] is not None:
                    self.steps[row["step_id"]] = self._step(row)

    def _step(self, row: Any) -> Step:
        step = step_from_row(row)
        seed = self.timestamps.seed
        seed(step.started_at, row["started_at"])
        seed(step.retry_after, row["retry_after"])
        return step

    def load_run(self, run_id: str) -> Run | None:
        row = self._one(_Sql.select_run, run_id=run_id)
        return None if row is None else run_from_row(row)

    def load_run_status(self, run_id: str) -> RunStatus | None:
        if self.status is not None:
            return self.status[0]
        row = self._one(_Sql.select_run_status, run_id=run_id)
        return None if row is None else cast(RunStatus, row[0])

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        if step_id in self.steps:
            return self.steps[step_id]
        row = self._one(_Sql.select_step, run_id=run_id, step_id=step_id)
        return None if row is None else self._step(row)

    def load_hook(self, hook_id: str) -> Hook | None:
        row = self._one(_Sql.select_hook, hook_id=hook_id)
        return None if row is None else hook_from_row(row)

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        row = self._one(_Sql.select_active_token, token=token)
        return None if row is None else hook_from_row(row)

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        row = self._one(_Sql.select_wait, run_id=run_id, wait_id=wait_id)
        return None if row is None else wait_from_row(row)

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        row = self._one(_Sql.select_latest_of_type, run_id=run_id, event_type=event_type)
        return None if row is None else event_from_row(row)

    def load_last_event_id(self, run_id: str) -> str | None:
        if self.last_event_id is not None:
            return self.last_event_id[0]
        row = self._one(_Sql.select_last_event_id, run_id=run_id)
        return None if row is None else str(row[0])


def _write_many(cursor: sqlite3.Cursor, sql: PreparedSql, rows: list[dict[str, Any]]) -> None:
    if len(rows) == 1:
        cursor.execute(sql.sql, sql.args(rows[0]))
    elif rows:
        cursor.executemany(sql.sql, [sql.args(row) for row in rows])


def _insert_events(cursor: sqlite3.Cursor, plan: PlannedWrites, timestamps: _Timestamps) -> None:
    text = timestamps.text
    event_json = plan.event_json
    params: list[Any] = []
    for event in plan.events:
        data = event_json.get(event.event_id)
        params += (
            event.event_id,
            event.run_id,
            event.event_type,
            event.correlation_id,
            dumps(event.data) if data is None else data,
            text(event.created_at),
            event.spec_version,
        )
    width = len(_EVENT_COLUMNS)
    chunk = _MAX_ROWS_PER_INSERT * width
    for start in range(0, len(params), chunk):
        part = params[start : start + chunk]
        cursor.execute(_insert_events_sql(len(part) // width), part)


def _write_steps(cursor: sqlite3.Cursor, plan: PlannedWrites, timestamps: _Timestamps) -> None:
    text = timestamps.text
    inserted = [
        (
            s.run_id,
            s.step_id,
            s.step_name,
            s.status,
            dumps(s.input),
            dumps(s.output),
            dumps(s.error),
            s.attempt,
            text(s.retry_after),
            text(s.created_at),
            text(s.updated_at),
            text(s.started_at),
            text(s.completed_at),
        )
        for s in plan.new_steps.values()
    ]
    updated = [
        (
            s.status,
            dumps(s.output),
            dumps(s.error),
            s.attempt,
            text(s.retry_after),
            text(s.updated_at),
            text(s.started_at),
            text(s.completed_at),
            s.run_id,
            s.step_id,
        )
        for s in plan.changed_steps.values()
    ]
    for sql, rows in ((_INSERT_STEP, inserted), (_UPDATE_STEP, updated)):
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        elif rows:
            cursor.executemany(sql, rows)


def write_plan(
    cursor: sqlite3.Cursor, plan: PlannedWrites, timestamps: _Timestamps | None = None
) -> None:
    """Write planned events and records inside the caller's transaction."""
    if timestamps is None:
        timestamps = _Timestamps()
    if plan.events:
        _insert_events(cursor, plan, timestamps)
    _write_many(cursor, _Sql.insert_run, [run_row(r) for r in plan.new_runs.values()])
    _write_many(
        cursor,
        _Sql.update_run,
        [_changes(r, _RUN_MUTABLE, k_run_id=r.run_id) for r in plan.changed_runs.values()],
    )
    if plan.new_steps or plan.changed_steps:
        _write_steps(cursor, plan, timestamps)
    _write_many(cursor, _Sql.insert_hook, [hook_row(h) for h in plan.new_hooks.values()])
    _write_many(
        cursor,
        _Sql.update_hook,
        [_changes(h, _HOOK_MUTABLE, k_hook_id=h.hook_id) for h in plan.changed_hooks.values()],
    )
    _write_many(cursor, _Sql.insert_wait, [wait_row(w) for w in plan.new_waits.values()])
    _write_many(
        cursor,
        _Sql.update_wait,
        [
            _changes(w, _WAIT_MUTABLE, k_run_id=w.run_id, k_wait_id=w.wait_id)
            for w in plan.changed_waits.values()
        ],
    )
    for run_id, at in plan.released_runs:
        params = {"k_run_id": run_id, "at": at.isoformat()}
        _write_many(cursor, _Sql.release_hooks, [params])
        _write_many(cursor, _Sql.release_waits, [params])


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
        """Append one event and update its record; see ``wfkit.worlds.base.Events.create``."""
        if run_id is None:
            if request.event_type != "run_created":
                raise InvalidEventError(f"{request.event_type} needs a run_id")
            run_id = new_id("wrun")
        return self.create_batch(run_id, [request])[0]

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
        timestamps = _Timestamps()
        with write_transaction(self._connections) as cursor:
            loader = _Loader(cursor, timestamps)
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

    def list(
        self, run_id: str, *, after_event_id: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """The run's events in append order, after ``after_event_id`` if given (an
        id not in the log compares as a string: ids sort in creation order)."""
        if after_event_id is None:
            sql, values = _Sql.list_events, {"run_id": run_id}
        else:
            sql, values = _Sql.list_events_after, {"run_id": run_id, "after": after_event_id}
        rows = fetch_all(self._connections, sql, **values, limit=-1 if limit is None else limit)
        return [event_from_row(row) for row in rows]


class LocalRecords:
    """Reads of runs, steps, hooks and waits (``world.runs`` … ``world.waits``)."""

    def __init__(self, engine: Engine, connections: ThreadConnections) -> None:
        self._engine = engine
        self._connections = connections

    def _rows(self, query: Any) -> list[Any]:
        with translated_errors(), self._engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def _fetch(self, sql: PreparedSql, **values: Any) -> list[Any]:
        return fetch_all(self._connections, sql, **values)

    def get_run(self, run_id: str) -> Run:
        """The run; RunNotFoundError when it does not exist."""
        rows = self._fetch(_Sql.select_run, run_id=run_id)
        if not rows:
            raise RunNotFoundError(f"run {run_id!r} not found")
        return run_from_row(rows[0])

    def list_runs(
        self, *, status: RunStatus | None, workflow_name: str | None, limit: int
    ) -> list[Run]:
        """Runs, newest first, optionally filtered by status and workflow."""
        query = select(runs_table).order_by(_R.run_id.desc()).limit(limit)
        if status is not None:
            query = query.where(_R.status == status)
        if workflow_name is not None:
            query = query.where(_R.workflow_name == workflow_name)
        return [run_from_row(row) for row in self._rows(query)]

    def get_step(self, run_id: str, step_id: str) -> Step:
        """The step; StepNotFoundError when it does not exist."""
        rows = self._fetch(_Sql.select_step, run_id=run_id, step_id=step_id)
        if not rows:
            raise StepNotFoundError(f"step {step_id!r} of run {run_id!r} not found")
        return step_from_row(rows[0])

    def list_steps(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return [step_from_row(row) for row in self._fetch(_Sql.list_steps, run_id=run_id)]

    def get_hook(self, hook_id: str) -> Hook:
        """The hook (any status); HookNotFoundError when it does not exist."""
        rows = self._fetch(_Sql.select_hook, hook_id=hook_id)
        if not rows:
            raise HookNotFoundError(f"hook {hook_id!r} not found")
        return hook_from_row(rows[0])

    def get_hook_by_token(self, token: str) -> Hook:
        """The active hook holding ``token``; HookNotFoundError otherwise."""
        rows = self._fetch(_Sql.select_active_token, token=token)
        if not rows:
            raise HookNotFoundError(f"no active hook holds token {token!r}")
        return hook_from_row(rows[0])

    def list_hooks(self, run_id: str | None) -> list[Hook]:
        """Hooks (of one run if given) in creation order."""
        if run_id is not None:
            rows = self._fetch(_Sql.list_run_hooks, run_id=run_id)
        else:
            rows = self._rows(select(hooks_table).order_by(_ROWID))
        return [hook_from_row(row) for row in rows]

    def get_wait(self, run_id: str, wait_id: str) -> Wait:
        """The wait; WaitNotFoundError when it does not exist."""
        rows = self._fetch(_Sql.select_wait, run_id=run_id, wait_id=wait_id)
        if not rows:
            raise WaitNotFoundError(f"wait {wait_id!r} of run {run_id!r} not found")
        return wait_from_row(rows[0])

    def list_waits(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return [wait_from_row(row) for row in self._fetch(_Sql.list_waits, run_id=run_id)]
