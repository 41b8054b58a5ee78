"""The local world's tables, codecs and statements, compiled once for SQLite.

The tables, codecs and record lookups come from the shared SQL layer
(``wfkit.worlds.sql``); what is here is how the local world runs them
(``PreparedSql``: compiled to SQLite SQL once, executed on a kept DBAPI
connection) and the statements only SQLite needs: record writes shaped for
``executemany``, the log listing, and two batch helpers (one query that reads
everything a batch of step events checks, one INSERT of many events).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from wfkit.worlds.local.db import PreparedSql
from wfkit.worlds.sql import Codecs, RecordStatements, RowCodec, build_tables

__all__ = [
    "CODECS",
    "STATEMENTS",
    "TABLES",
    "LocalSql",
    "insert_events_sql",
    "prefetch_sql",
]

TABLES = build_tables("sqlite")
CODECS = Codecs.build(TABLES)
STATEMENTS = RecordStatements.build(TABLES)

_E, _R, _S = TABLES.events.c, TABLES.runs.c, TABLES.steps.c


def _checked(sql: PreparedSql, names: Sequence[str]) -> PreparedSql:
    """``sql``, after checking that its positional parameters are ``names`` in order
    (the hot path passes sequences, not mappings)."""
    if sql.names != tuple(names):
        raise RuntimeError(f"unexpected parameters {sql.names} of {sql.sql!r}")
    return sql


def _insert_record(codec: RowCodec[Any]) -> PreparedSql:
    """INSERT of a record, taking ``codec.values`` as its parameters."""
    return _checked(PreparedSql(insert(codec.table), codec.columns), codec.columns)


def _update_record(codec: RowCodec[Any]) -> PreparedSql:
    """UPDATE of a record's mutable columns, taking ``codec.update_values``."""
    table = codec.table
    keys = [f"k_{key}" for key in codec.keys]
    statement = update(table).where(
        *(table.c[key] == bindparam(name) for key, name in zip(codec.keys, keys, strict=True))
    )
    return _checked(PreparedSql(statement, codec.mutable), [*codec.mutable, *keys])


_RUN_IDS = func.json_each(bindparam("run_ids")).table_valued("value")
_AFTER_SEQ = select(_E.seq).where(_E.event_id == bindparam("after")).scalar_subquery()


class LocalSql:
    """The prepared statements of the local world."""

    select_run = PreparedSql(STATEMENTS.run)
    select_run_status = PreparedSql(STATEMENTS.run_status)
    select_step = PreparedSql(STATEMENTS.step)
    select_hook = PreparedSql(STATEMENTS.hook)
    select_active_token = PreparedSql(STATEMENTS.active_hook_by_token)
    select_wait = PreparedSql(STATEMENTS.wait)
    select_waits_of_run = PreparedSql(STATEMENTS.waits_of_run)
    select_latest_of_type = PreparedSql(STATEMENTS.latest_event_of_type)
    select_last_event_id = PreparedSql(STATEMENTS.last_event_id)

    list_events = PreparedSql(
        select(TABLES.events)
        .where(_E.run_id == bindparam("run_id"))
        .order_by(_E.seq)
        .limit(bindparam("limit"))
    )
    # An ``after`` id that is not in the log compares as a string (ids sort in
    # creation order).
    list_events_after = PreparedSql(
        select(TABLES.events)
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

    insert_run = _insert_record(CODECS.run)
    insert_step = _insert_record(CODECS.step)
    insert_hook = _insert_record(CODECS.hook)
    insert_wait = _insert_record(CODECS.wait)
    update_run = _update_record(CODECS.run)
    update_step = _update_record(CODECS.step)
    update_hook = _update_record(CODECS.hook)
    update_wait = _update_record(CODECS.wait)
    # The last event id of each run of a JSON array of run ids: rows of (run id,
    # its last event id or NULL). What a group planned before the lock checks.
    last_event_ids = PreparedSql(
        select(
            _RUN_IDS.c.value,
            select(_E.event_id)
            .where(_E.run_id == _RUN_IDS.c.value)
            .order_by(_E.seq.desc())
            .limit(1)
            .scalar_subquery(),
        )
    )
    release_hooks = PreparedSql(
        update(TABLES.hooks)
        .where(TABLES.hooks.c.run_id == bindparam("k_run_id"), TABLES.hooks.c.status == "active")
        .values(status="disposed", updated_at=bindparam("at"))
    )
    release_waits = PreparedSql(
        update(TABLES.waits)
        .where(TABLES.waits.c.run_id == bindparam("k_run_id"), TABLES.waits.c.status == "waiting")
        .values(status="completed", updated_at=bindparam("at"), completed_at=bindparam("at"))
    )


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
    .correlate(TABLES.runs)
    .scalar_subquery()
)


@functools.lru_cache(maxsize=64)
def prefetch_sql(step_count: int, with_last: bool) -> tuple[str, tuple[Any, ...]]:
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
        query = select(*columns, *TABLES.steps.c).select_from(
            TABLES.runs.outerjoin(TABLES.steps, on)
        )
    else:
        query = select(*columns)
    return _fixed_then(PreparedSql(query.where(_R.run_id == bindparam("run_id"))), [*ids, "run_id"])


MAX_ROWS_PER_INSERT = 64
"""SQLite allows at most 32766 parameters per statement; 64 events stay far below."""


@functools.lru_cache(maxsize=MAX_ROWS_PER_INSERT)
def insert_events_sql(count: int) -> str:
    """A multi-row INSERT of ``count`` events (``CODECS.event.values`` row after row)."""
    columns = CODECS.event.columns
    rows: list[dict[str, Any]] = [{c: bindparam(f"{c}_{n}") for c in columns} for n in range(count)]
    names = [f"{c}_{n}" for n in range(count) for c in columns]
    return _checked(PreparedSql(insert(TABLES.events).values(rows)), names).sql
