"""Turn a ``PlannedWrites`` into as few SQL statements as possible.

A sequential step costs one transaction, so the number of round trips is the
step rate. Everything a plan writes goes out in one statement: the event rows,
the new and changed step/hook/wait rows and the queue messages as data-modifying
CTEs over ``json_to_recordset`` of one JSON parameter per table (one statement
text whatever the row count, so psycopg prepares it once), with the run row's
write (insert, update, or at least its ``last_event_id``) as the primary
statement. Rows come from the shared codecs (``wfkit.worlds.sql``); an UPDATE
writes the columns a transition may change. Two rare cases take an extra
statement: a batch that both changes and creates hooks updates the changed ones
first (so a token disposed and re-taken in one batch does not trip the
active-token index inside one statement), and a run that became terminal
releases its remaining hooks and waits afterwards.

A *guarded* plan (``guard_last_event_id``, the cached path of ``tails``) is
written without having locked the run: its first CTE moves the run's
``last_event_id`` on (and writes the run's changed columns, for a start or an
ending planned on the tail) only if it still is the expected id (under READ COMMITTED
an UPDATE waits for a concurrent writer's row lock and re-checks its condition
on the newest row), every other write is conditioned on that CTE having
returned its row, and the statement returns how many run rows it moved (1 or 0).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TypeVar

from pydantic import BaseModel

from wfkit.worlds.base import PlannedWrites, Run
from wfkit.worlds.postgres.session import Statement, text_array
from wfkit.worlds.postgres.sql import CODECS, TableNames, column_types
from wfkit.worlds.sql import RowCodec

__all__ = ["insert_messages_sql", "plan_statements"]

Columns = tuple[tuple[str, str], ...]
R = TypeVar("R", bound=BaseModel)


_ISO_KEPT = 512
"""ISO texts remembered (``_ISO_TEXTS``); past it they are forgotten at once."""


class _IsoTexts(dict[datetime | None, str | None]):
    """ISO texts by datetime, each made on first use and kept across plans: a
    step's record carries the times of the batches before (its ``created_at``,
    ``started_at``), formatted then already. Equal datetimes share a text: they
    name the same instant, which is what the server stores."""

    def __missing__(self, value: datetime | None) -> str | None:
        if value is None:
            return None  # cleared by another thread just now
        if len(self) >= _ISO_KEPT:
            self.clear()
            self[None] = None
        text = self[value] = value.isoformat()
        return text


_ISO_TEXTS = _IsoTexts({None: None})


def _time_texts() -> Callable[[datetime | None], str | None]:
    """A TIME column's value as the JSON rows carry it (ISO text, which the server
    types; None for NULL). The lookup is a dict's own ``__getitem__``: no Python
    frame per column, and no ``isoformat`` (the dearest call of a row) for a
    datetime already formatted."""
    return _ISO_TEXTS.__getitem__


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as a row value")


# What ``JSONEncoder(...).encode`` ends in, minus its Python frames; without a
# circular check (flat values of str/int/float/None), so one encoder serves every call.
_VALUE_ENCODER = c_make_encoder(
    None, _json_default, encode_basestring_ascii, None, ":", ",", False, False, False
)


def _encode_value(value: object) -> str:
    """Compact, ASCII-only JSON text of one row value (NaN refused, as
    ``allow_nan=False``; a datetime as its ISO text)."""
    return "".join(_VALUE_ENCODER(value, 0))


RowJson = Callable[[Sequence[Any], int], str]


@functools.cache
def _row_json(columns: Columns) -> RowJson:
    """``row_json(values, ord)``: the JSON object text of one row, keys = the
    column names then ``ord``, byte for byte what the C encoder makes of
    ``dict(zip(names + ["ord"], [*values, ord]))`` without building that dict
    (which, with its keys escaped again for every row, cost as much as the rest
    of a step's planning). Compiled from the columns, the way the codecs are:
    ``str`` values are escaped by the encoder's own C function, ``None`` and
    ``int`` written directly, anything else goes through the encoder."""
    pieces: list[str] = []  # the expression of each piece of the text, in order
    values = []
    for i, (name, _) in enumerate(columns):
        if not name.isidentifier():
            raise ValueError(f"column name {name!r} is not an identifier")
        value = f"v{i}"
        values.append(value)
        pieces.append(repr(("{" if i == 0 else ",") + f'"{name}":'))
        pieces.append(
            f"(quote({value}) if type({value}) is str else 'null' if {value} is None"
            f" else int_text({value}) if type({value}) is int else encode({value}))"
        )
    pieces += ["'" + ("," if values else "{") + '"ord":\'', "int_text(ord)", "'}'"]
    unpack = f"    {', '.join(values)}, = row\n" if values else ""
    source = f"def row_json(row, ord):\n{unpack}    return ''.join([{', '.join(pieces)}])\n"
    scope: dict[str, Any] = {
        "quote": encode_basestring_ascii,
        "int_text": int.__repr__,
        "encode": _encode_value,
    }
    exec(compile(source, "<wfkit.worlds.postgres.writes row_json>", "exec"), scope)
    row_json: RowJson = scope["row_json"]
    return row_json


class _RowSet:
    """The typed columns of one JSON row set (``_unnest``) and the ``row_json`` made
    for them, built once per kind of row. Hashed by identity: the statement texts
    are cached by it, where a tuple of column pairs was hashed again, pair by pair,
    on every lookup (three lookups per table per plan)."""

    __slots__ = ("columns", "row_json")

    def __init__(self, columns: Iterable[tuple[str, str]]) -> None:
        self.columns: Columns = tuple(columns)
        self.row_json = _row_json(self.columns)


@dataclass(frozen=True)
class _Shape:
    """The typed columns of a record's INSERT and of its UPDATE (mutable + keys)."""

    insert: _RowSet
    update: _RowSet
    keys: tuple[str, ...]

    @classmethod
    def of(cls, codec: RowCodec[R]) -> _Shape:
        return cls(
            insert=_RowSet(column_types(codec.table, codec.columns)),
            update=_RowSet(column_types(codec.table, (*codec.mutable, *codec.keys))),
            keys=codec.keys,
        )


_EVENTS = _RowSet(column_types(CODECS.event.table, CODECS.event.columns))
# The plan has each event's data as JSON text already (PlannedWrites.event_json).
_EVENT_VALUES = CODECS.event.encoder("data", timed=True)
_STEPS, _HOOKS, _WAITS = _Shape.of(CODECS.step), _Shape.of(CODECS.hook), _Shape.of(CODECS.wait)
# Queue rows carry the delay; the server's clock turns it into visible_at.
_MESSAGES = _RowSet(
    (
        *column_types(
            CODECS.message.table, ("message_id", "queue", "payload", "idempotency_key", "run_id")
        ),
        ("delay", "float8"),
    )
)


def _unnest(
    alias: str, rows_of: _RowSet, rows: Iterable[Sequence[Any]], params: dict[str, Any]
) -> None:
    """Put the JSON of ``rows`` in ``params[alias]``, for ``_source_sql(alias, rows_of)``:
    ``json_to_recordset(...) AS alias(cols, ord)`` over that one parameter.

    ``rows`` are value lists in ``rows_of.columns`` order (times already ISO text). One
    JSON text per table is much cheaper to send than one array per column; the
    column list types the values on the server (ISO strings → timestamptz).
    Stored JSON documents travel as JSON strings, so the ``\\u0000`` they hold
    stays six characters and never becomes a NUL."""
    row_json = rows_of.row_json
    params[alias] = "[" + ",".join([row_json(row, i) for i, row in enumerate(rows)]) + "]"


# The statement texts depend only on the table, alias and columns: built once
# each (joining the column lists was a fifth of a step's planning CPU).
@functools.cache
def _source_sql(alias: str, rows_of: _RowSet) -> str:
    names = ", ".join(f"{name} {sql_type}" for name, sql_type in rows_of.columns)
    return f"json_to_recordset(%({alias})s::json) AS {alias}({names}, ord int)"


_GUARD = "guard"
_GUARDED = f"EXISTS (SELECT 1 FROM {_GUARD})"


def _insert(
    table: str,
    alias: str,
    rows_of: _RowSet,
    rows: Iterable[Sequence[Any]],
    params: dict[str, Any],
    *,
    guarded: bool = False,
) -> str:
    _unnest(alias, rows_of, rows, params)
    return _insert_sql(table, alias, rows_of, guarded)


@functools.cache
def _insert_sql(table: str, alias: str, rows_of: _RowSet, guarded: bool) -> str:
    names = ", ".join(name for name, _ in rows_of.columns)
    where = f" WHERE {_GUARDED}" if guarded else ""
    source = _source_sql(alias, rows_of)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM {source}{where} ORDER BY ord"


def _update(
    table: str,
    alias: str,
    rows_of: _RowSet,
    keys: tuple[str, ...],
    rows: Iterable[Sequence[Any]],
    params: dict[str, Any],
    *,
    guarded: bool = False,
    scoped: bool = False,
) -> str:
    listed = list(rows)
    _unnest(alias, rows_of, listed, params)
    ids = [row[-1] for row in listed]  # the last key column ends an update's values
    params[f"{alias}_ids"] = ids[0] if len(ids) == 1 else text_array(ids)
    return _update_sql(table, alias, rows_of, keys, guarded, scoped, len(ids) == 1)


@functools.cache
def _update_sql(
    table: str,
    alias: str,
    rows_of: _RowSet,
    keys: tuple[str, ...],
    guarded: bool,
    scoped: bool,
    single: bool,
) -> str:
    """The UPDATE of the rows in ``alias``'s JSON, found by index.

    The planner takes json_to_recordset for 100 rows whatever it holds, and joined
    on the keys alone it hashed those against a scan of the WHOLE table (steps: 0.9 ms
    per step at 10,000 rows, growing with the table), or, once told the run, walked
    every step of the run (quadratic in a long run). So the rows are also named by
    value: the run (``scoped``: every row is the plan's run's) and the last key
    column, by equality when there is one row (a sequential step: an index
    condition on the whole primary key, whatever the statistics say), else as
    an array."""
    sets = ", ".join(f"{name} = {alias}.{name}" for name, _ in rows_of.columns if name not in keys)
    match = " AND ".join(f"t.{key} = {alias}.{key}" for key in keys)
    named = f"%({alias}_ids)s" if single else f"ANY(%({alias}_ids)s::text[])"
    match += f" AND t.{keys[-1]} = {named}"
    if scoped:
        match = f"t.run_id = %(run_id)s AND {match}"
    if guarded:
        match += f" AND {_GUARDED}"
    return f"UPDATE {table} AS t SET {sets} FROM {_source_sql(alias, rows_of)} WHERE {match}"


def insert_messages_sql(
    names: TableNames, alias: str, rows: Sequence[Mapping[str, Any]], params: dict[str, Any]
) -> str:
    """An INSERT of queue messages (``message_id, queue, payload, idempotency_key,
    run_id, delay``), skipping any whose idempotency key an unacked message holds.

    Times come from the server's clock, so machines with skewed clocks agree."""
    values = ([row[name] for name, _ in _MESSAGES.columns] for row in rows)
    _unnest(alias, _MESSAGES, values, params)
    return _messages_sql(names.queue_messages, alias)


@functools.cache
def _messages_sql(queue_messages: str, alias: str) -> str:
    source = _source_sql(alias, _MESSAGES)
    return (
        f"INSERT INTO {queue_messages} (message_id, queue, payload, attempt,"
        " idempotency_key, run_id, created_at, visible_at)"
        f" SELECT {alias}.message_id, {alias}.queue, {alias}.payload, 0, {alias}.idempotency_key,"
        f" {alias}.run_id, clock_timestamp(),"
        f" clock_timestamp() + make_interval(secs => {alias}.delay)"
        f" FROM {source} ORDER BY ord"
        " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    )


def plan_statements(
    names: TableNames,
    run_id: str,
    plan: PlannedWrites,
    messages: Sequence[Mapping[str, Any]] = (),
    *,
    guard_last_event_id: str | None = None,
) -> list[Statement]:
    """The statements that write ``plan`` (and enqueue ``messages``), in order.

    The caller sends them inside the transaction that holds the run's row lock
    (or creates the run), so nothing else writes these rows concurrently; or,
    with ``guard_last_event_id``, as one guarded statement (module docstring)
    whose one row's ``written`` column says whether anything was written.

    Raises:
        ValueError: a guarded plan that writes more than events, steps and the
            run's tail (the cached path never plans one).
    """
    statements: list[Statement] = []
    params: dict[str, Any] = {"run_id": run_id}
    iso = _time_texts()
    bodies: list[str] = []  # each CTE's statement (texts built once per shape)
    guard: str | None = None
    guarded = guard_last_event_id is not None
    if guarded:
        if not plan.events or plan.new_runs or set(plan.changed_runs) - {run_id}:
            raise ValueError("a guarded plan writes only events, steps and its run's row")
        if plan.released_runs or plan.new_hooks or plan.changed_hooks:
            raise ValueError("a guarded plan writes only events, steps and its run's row")
        if plan.new_waits or plan.changed_waits:
            raise ValueError("a guarded plan writes only events, steps and its run's row")
        params["expected_last_event_id"] = guard_last_event_id
        params["last_event_id"] = plan.events[-1].event_id
        changed_run = plan.changed_runs.get(run_id)
        if changed_run is not None:
            params.update(_changed_run_params(changed_run, iso))
        guard = _guard_sql(names.runs, changed_run is not None)
    cte = bodies.append

    if plan.events:
        event_json = plan.event_json
        rows: Iterable[Sequence[Any]] = [
            _EVENT_VALUES(e, iso, event_json[e.event_id]) for e in plan.events
        ]
        cte(_insert(names.events, "ev", _EVENTS, rows, params, guarded=guarded))
        params["last_event_id"] = plan.events[-1].event_id
    if plan.new_steps:
        rows = (CODECS.step.values(s, iso) for s in plan.new_steps.values())
        cte(_insert(names.steps, "sn", _STEPS.insert, rows, params, guarded=guarded))
    if plan.changed_steps:
        rows = (CODECS.step.update_values(s, iso) for s in plan.changed_steps.values())
        scoped = all(key[0] == run_id for key in plan.changed_steps)
        cte(
            _update(
                names.steps,
                "sc",
                _STEPS.update,
                _STEPS.keys,
                rows,
                params,
                guarded=guarded,
                scoped=scoped,
            )
        )
    if plan.changed_hooks:
        hook_update: dict[str, Any] = {}
        rows = (CODECS.hook.update_values(h, iso) for h in plan.changed_hooks.values())
        # A hook's key is its id alone: naming it finds the row, no run needed.
        sql = _update(names.hooks, "hc", _HOOKS.update, _HOOKS.keys, rows, hook_update)
        if plan.new_hooks:
            statements.append((sql, hook_update))
        else:
            params.update(hook_update)
            cte(sql)
    if plan.new_hooks:
        rows = (CODECS.hook.values(h, iso) for h in plan.new_hooks.values())
        cte(_insert(names.hooks, "hn", _HOOKS.insert, rows, params))
    if plan.new_waits:
        rows = (CODECS.wait.values(w, iso) for w in plan.new_waits.values())
        cte(_insert(names.waits, "wn", _WAITS.insert, rows, params))
    if plan.changed_waits:
        rows = (CODECS.wait.update_values(w, iso) for w in plan.changed_waits.values())
        scoped = all(key[0] == run_id for key in plan.changed_waits)
        cte(_update(names.waits, "wc", _WAITS.update, _WAITS.keys, rows, params, scoped=scoped))
    if messages:
        if guarded:
            raise ValueError("a guarded plan enqueues no messages")
        cte(insert_messages_sql(names, "qm", messages, params))

    primary = _GUARDED_PRIMARY if guarded else _run_statement(names, plan, params)
    if primary is not None or bodies:
        statements.append((_statement_text(guard, tuple(bodies), primary), params))

    for released_run_id, at in plan.released_runs:
        statements.append(
            (
                f"WITH h AS (UPDATE {names.hooks} SET status = 'disposed', updated_at = %(at)s"
                " WHERE run_id = %(run_id)s AND status = 'active')"
                f" UPDATE {names.waits} SET status = 'completed', updated_at = %(at)s,"
                " completed_at = %(at)s WHERE run_id = %(run_id)s AND status = 'waiting'",
                {"run_id": released_run_id, "at": iso(at)},
            )
        )
    return statements


_GUARDED_PRIMARY = f"SELECT count(*) AS written FROM {_GUARD}"


@functools.cache
def _guard_sql(runs: str, changes_run: bool) -> str:
    """The guard's UPDATE of the run row: its tail, and with ``changes_run`` the
    columns a transition may change (a start or an ending planned on the tail)."""
    sets = "".join(f"{name} = %(r_{name})s, " for name in CODECS.run.mutable) if changes_run else ""
    return (
        f"UPDATE {runs} SET {sets}last_event_id = %(last_event_id)s"
        " WHERE run_id = %(run_id)s AND last_event_id = %(expected_last_event_id)s"
        " RETURNING 1"
    )


@functools.lru_cache(maxsize=1024)
def _statement_text(guard: str | None, bodies: tuple[str, ...], primary: str | None) -> str:
    """A plan's one statement: the guard's CTE first, then ``w1``, ``w2``, … (``w0``
    first without a guard), then the primary statement. The same shape gives the
    same text object, which the statement caches downstream then find at once
    (rebuilt, its two kilobytes were hashed and compared on every lookup)."""
    ctes = [] if guard is None else [f"{_GUARD} AS ({guard})"]
    for body in bodies:
        ctes.append(f"w{len(ctes)} AS ({body})")
    return (f"WITH {', '.join(ctes)} " if ctes else "") + (primary or "SELECT 1")


def _run_statement(names: TableNames, plan: PlannedWrites, params: dict[str, Any]) -> str | None:
    """The run row's write, carrying the log's new tail in ``last_event_id``."""
    has_events = "last_event_id" in params
    codec = CODECS.run
    iso = _time_texts()
    run_record = next(iter(plan.new_runs.values()), None)
    if run_record is not None:
        params.update(_run_params(codec.columns, codec.values(run_record, iso)))
        return _run_sql(names.runs, "insert", has_events)
    run_record = next(iter(plan.changed_runs.values()), None)
    if run_record is not None:
        params.update(_changed_run_params(run_record, iso))
        return _run_sql(names.runs, "update", has_events)
    return _run_sql(names.runs, "tail", has_events) if has_events else None


def _changed_run_params(run: Run, iso: Callable[[datetime | None], str | None]) -> dict[str, Any]:
    """The parameters of a changed run row's UPDATE (``_run_params``)."""
    codec = CODECS.run
    return _run_params((*codec.mutable, *codec.keys), codec.update_values(run, iso))


def _run_params(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """The run row's parameters, ``r_<column>``, all text or NULL: times come as
    ISO text already, integers are sent as their text. Each one is written to
    its column (``VALUES`` of the INSERT, ``SET`` of the UPDATE) or compared with
    the text ``run_id``, so the server types it as the column, as when psycopg
    adapted the value itself; but all-text parameters take ``session``'s raw
    path, without psycopg's cursor (run creations, starts and ends went through
    it, as a pipeline of cursors when written in a group)."""
    return {
        f"r_{name}": int.__repr__(value) if type(value) is int else value
        for name, value in zip(columns, values, strict=True)
    }


@functools.cache
def _run_sql(runs: str, write: str, has_events: bool) -> str:
    """The run row's ``insert``, ``update`` (with the tail when ``has_events``) or
    ``tail`` (``last_event_id`` alone)."""
    codec = CODECS.run
    if write == "insert":
        cols = ", ".join(codec.columns)
        values = ", ".join(f"%(r_{name})s" for name in codec.columns)
        return f"INSERT INTO {runs} ({cols}, last_event_id) VALUES ({values}, %(last_event_id)s)"
    if write == "update":
        sets = ", ".join(f"{name} = %(r_{name})s" for name in codec.mutable)
        tail = ", last_event_id = %(last_event_id)s" if has_events else ""
        return f"UPDATE {runs} SET {sets}{tail} WHERE run_id = %(r_run_id)s"
    return f"UPDATE {runs} SET last_event_id = %(last_event_id)s WHERE run_id = %(run_id)s"
