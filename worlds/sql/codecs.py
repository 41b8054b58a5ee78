"""Row ⇄ record conversions, derived from the declared columns.

A ``RowCodec`` pairs a record model (``Run``, ``Step``, ``Hook``, ``Wait``,
``Event``, ``QueueMessage``) with its table on one database. It gives a record's
column values for an INSERT, its changed values for an UPDATE (the ``mutable``
columns, then the keys) and the record back from a row. What a value becomes
depends only on the column's ``Kind`` and the database:

==============  =================================  =====================
kind            SQLite                             Postgres
==============  =================================  =====================
VALUE           JSON text; None is ``'null'``      JSON text; None is NULL
DOCUMENT        JSON text                          JSON text
TIME            ISO 8601 text                      datetime (timestamptz)
FLAG            0 / 1                              bool
DUE             seconds since the epoch            datetime (timestamptz)
==============  =================================  =====================

JSON text is ASCII (``ensure_ascii``): a NUL inside a user value is stored as the
six characters ``\\u0000``, which both databases' TEXT accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import NoneType, UnionType
from typing import Any, Generic, Literal, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table

from wfkit.worlds.base import (
    CorruptedLogError,
    Event,
    Hook,
    QueueMessage,
    Run,
    Schedule,
    Step,
    Wait,
    json_text,
    trusted_constructor,
)
from wfkit.worlds.sql.schema import Dialect, Kind, Tables

__all__ = [
    "Codecs",
    "EncodeTime",
    "RowCodec",
    "RowLike",
    "decode_events",
    "dump_json",
    "load_json",
]

R = TypeVar("R", bound=BaseModel)


class RowLike(Protocol):
    """A row as drivers return it: ``sqlite3.Row``, a dict, SQLAlchemy's ``RowMapping``."""

    def __getitem__(self, column: str, /) -> Any: ...


Convert = Callable[[Any], Any]
EncodeTime = Callable[[datetime | None], Any]

_encode = json_text.dump_json
_decode = json_text.load_json


def dump_json(value: Any) -> str:
    """Compact, ASCII-only JSON text of ``value``."""
    return _encode(value)


def load_json(raw: str | None) -> Any:
    """The value of JSON text (None for SQL NULL)."""
    return None if raw is None else _decode(raw)


def _dump_value_sqlite(value: Any) -> str:
    return "null" if value is None else _encode(value)


def _load_value_sqlite(raw: str | None) -> Any:
    return None if raw is None or raw == "null" else _decode(raw)


def _dump_value_postgres(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _epoch(value: datetime) -> float:
    return value.timestamp()


_SQLITE: dict[Kind, tuple[Convert, Convert]] = {
    Kind.VALUE: (_dump_value_sqlite, _load_value_sqlite),
    Kind.DOCUMENT: (_encode, _decode),
    Kind.TIME: (_iso, _from_iso),
    Kind.FLAG: (int, bool),
    Kind.DUE: (_epoch, _from_epoch),
}
_POSTGRES: dict[Kind, tuple[Convert, Convert]] = {
    Kind.VALUE: (_dump_value_postgres, load_json),
    Kind.DOCUMENT: (_encode, _decode),
}
_CONVERSIONS: dict[Dialect, dict[Kind, tuple[Convert, Convert]]] = {
    "sqlite": _SQLITE,
    "postgresql": _POSTGRES,
}


def _compile(name: str, params: Sequence[str], expression: str, scope: dict[str, Any]) -> Any:
    """``def name(*params): return expression``, compiled with ``scope`` as globals.

    The codecs are compiled from the declaration, the way ``dataclasses`` compiles
    ``__init__``: the write path runs them several times per step, and a loop over
    the columns cost as much again as the hand-written tuples they replace. Only
    column names from the declaration reach the source (checked to be identifiers).
    """
    source = f"def {name}({', '.join(params)}):\n    return {expression}\n"
    exec(compile(source, f"<wfkit.worlds.sql.codecs {name}>", "exec"), scope)
    return scope[name]


def _type_check(annotation: Any, value: str) -> str | None:
    """A Python expression that is true when ``value`` (a variable name) holds
    something that validation against ``annotation`` would keep exactly as it is
    (same object, same type); None for an annotation with no such check.

    Only what the declared records use: ``str``, ``int``, ``bool``, ``float``,
    ``datetime``, ``Any``, a ``Literal`` of strings, ``dict[str, Any]`` and
    ``X | None``. A value the check refuses goes through validation."""
    if annotation is Any:
        return "True"
    if annotation in (str, int, bool, float, datetime):
        return f"type({value}) is {annotation.__name__}"
    origin = get_origin(annotation)
    if origin is Literal:
        literals = get_args(annotation)
        if not all(type(option) is str for option in literals):
            return None
        return f"(type({value}) is str and {value} in {frozenset(literals)!r})"
    if origin is dict and get_args(annotation) == (str, Any):
        # JSON objects have string keys; checked all the same (validation does).
        return f"(type({value}) is dict and all(type(k) is str for k in {value}))"
    if origin in (Union, UnionType):
        options = [option for option in get_args(annotation) if option is not NoneType]
        if len(options) != 1 or len(get_args(annotation)) != 2:
            return None
        inner = _type_check(options[0], value)
        return None if inner is None else f"({value} is None or {inner})"
    return None


class _Encoder:
    """The stored values of some columns of a record, in a fixed order, as compiled
    functions: ``default(record)`` writes times the database's way, ``timed(record,
    encode_time)`` with the caller's encoder; ``variant`` makes others."""

    __slots__ = ("_conversions", "_kinds", "default", "names", "timed")

    def __init__(
        self,
        names: Sequence[str],
        kinds: Sequence[Kind],
        conversions: Mapping[Kind, tuple[Convert, Convert]],
    ) -> None:
        self.names = tuple(names)
        self._kinds = tuple(kinds)
        self._conversions = conversions
        self.default: Callable[[Any], list[Any]] = self.variant(timed=False, preset=())
        self.timed: Callable[[Any, EncodeTime], list[Any]] = self.variant(timed=True, preset=())

    def variant(self, *, timed: bool, preset: Sequence[str]) -> Callable[..., list[Any]]:
        """A function ``(record[, encode_time], *preset values) -> values``: with
        ``timed``, TIME columns go through the ``encode_time`` it is given; columns
        named in ``preset`` take the values passed for them as they are."""
        scope: dict[str, Any] = {}
        items: list[str] = []
        for name, kind in zip(self.names, self._kinds, strict=True):
            if not name.isidentifier():
                raise ValueError(f"column name {name!r} is not an identifier")
            if name in preset:
                items.append(f"preset_{name}")
            elif kind is Kind.TIME and timed:
                items.append(f"encode_time(record.{name})")
            elif kind in self._conversions:
                scope[f"encode_{name}"] = self._conversions[kind][0]
                items.append(f"encode_{name}(record.{name})")
            else:
                items.append(f"record.{name}")
        params = ["record", *(["encode_time"] if timed else []), *(f"preset_{n}" for n in preset)]
        encode: Callable[..., list[Any]] = _compile(
            "encode", params, f"[{', '.join(items)}]", scope
        )
        return encode


class RowCodec(Generic[R]):
    """Converts records of one model to and from the rows of its table.

    Every field of the model is a column of the table (checked when the codec is
    built); columns that are not fields (``seq``, ``last_event_id``) are left to
    the database.

    Attributes:
        table: the table.
        columns: the record's columns, in table order (what ``values`` gives).
        mutable: the columns a lifecycle transition may change, in table order.
        keys: the primary-key columns among ``columns``.
    """

    def __init__(self, model: type[R], table: Table, dialect: Dialect) -> None:
        fields = set(model.model_fields)
        stored = [column for column in table.columns if column.name in fields]
        missing = fields - {column.name for column in stored}
        if missing:
            raise TypeError(f"{table.name} has no column for {model.__name__}.{sorted(missing)}")
        self.model = model
        self.table = table
        self.columns = tuple(column.name for column in stored)
        self.mutable = tuple(column.name for column in stored if column.info["mutable"])
        self.keys = tuple(column.name for column in stored if column.primary_key)
        conversions = _CONVERSIONS[dialect]
        kind_of = {column.name: column.info["kind"] for column in stored}
        changed = (*self.mutable, *self.keys)
        self._insert = _Encoder(self.columns, [kind_of[n] for n in self.columns], conversions)
        self._update = _Encoder(changed, [kind_of[n] for n in changed], conversions)
        self._decode: Callable[[RowLike], R] = self._compile_decode(model, kind_of, conversions)

    def _compile_decode(
        self,
        model: type[R],
        kind_of: Mapping[str, Kind],
        conversions: Mapping[Kind, tuple[Convert, Convert]],
    ) -> Callable[[RowLike], R]:
        """``decode(row)``: the record of a row. The values read are checked to be
        of exactly their fields' types (``_type_check``); then the record is built
        without validation (``trusted_constructor``: the record is the validated
        one), otherwise through validation, which keeps its conversions and its
        errors for rows a hand or a fault damaged."""
        scope: dict[str, Any] = {"model": model, "datetime": datetime}
        lines: list[str] = []
        arguments: list[str] = []
        checks: list[str] = []
        for name in self.columns:
            if kind_of[name] in conversions:
                scope[f"decode_{name}"] = conversions[kind_of[name]][1]
                lines.append(f"v_{name} = decode_{name}(row[{name!r}])")
            else:
                lines.append(f"v_{name} = row[{name!r}]")
            arguments.append(f"{name}=v_{name}")
            check = _type_check(model.model_fields[name].annotation, f"v_{name}")
            checks.append("False" if check is None else check)
        call = ", ".join(arguments)
        if "False" in checks:
            lines.append(f"return model({call})")
        else:
            scope["trusted"] = trusted_constructor(model)
            lines.append(f"if {' and '.join(checks)}:")
            lines.append(f"    return trusted({call})")
            lines.append(f"return model({call})")
        source = "def decode(row):\n" + "".join(f"    {line}\n" for line in lines)
        exec(compile(source, f"<wfkit.worlds.sql.codecs decode {model.__name__}>", "exec"), scope)
        decode: Callable[[RowLike], R] = scope["decode"]
        return decode

    def values(self, record: R, encode_time: EncodeTime | None = None) -> list[Any]:
        """The stored values of ``record``, one per ``columns`` entry.

        Args:
            record: the record.
            encode_time: how TIME columns are written, instead of the database's
                default (the local world passes a per-batch cache of ISO texts).
        """
        if encode_time is None:
            return self._insert.default(record)
        return self._insert.timed(record, encode_time)

    def update_values(self, record: R, encode_time: EncodeTime | None = None) -> list[Any]:
        """The stored values of ``record``'s ``mutable`` columns, then its ``keys``."""
        if encode_time is None:
            return self._update.default(record)
        return self._update.timed(record, encode_time)

    def encoder(self, *preset: str, timed: bool = False) -> Callable[..., list[Any]]:
        """``values`` as a function for a caller that already holds some columns'
        stored values (an event's data, as the lifecycle plan encoded it).

        Returns:
            ``f(record, [encode_time,] *values of preset)``, taking ``encode_time``
            when ``timed``; made once, called per row.
        """
        unknown = set(preset) - set(self.columns)
        if unknown:
            raise ValueError(f"{self.table.name} has no column {sorted(unknown)}")
        return self._insert.variant(timed=timed, preset=preset)

    def params(self, record: R) -> dict[str, Any]:
        """``values`` by column name."""
        return dict(zip(self.columns, self._insert.default(record), strict=True))

    def update_params(self, record: R) -> dict[str, Any]:
        """``update_values`` by column name (``mutable`` columns, then ``keys``)."""
        return dict(zip(self._update.names, self._update.default(record), strict=True))

    def from_row(self, row: RowLike) -> R:
        """The record a row holds (``row``: anything indexable by column name, such
        as a ``sqlite3.Row`` or a dict; extra columns are ignored)."""
        return self._decode(row)


@dataclass(frozen=True)
class Codecs:
    """The codec of every record table of one database."""

    run: RowCodec[Run]
    step: RowCodec[Step]
    hook: RowCodec[Hook]
    wait: RowCodec[Wait]
    event: RowCodec[Event]
    message: RowCodec[QueueMessage]
    schedule: RowCodec[Schedule]

    @classmethod
    def build(cls, tables: Tables) -> Codecs:
        """The codecs of ``tables`` (built once per world)."""
        dialect = tables.dialect
        return cls(
            run=RowCodec(Run, tables.runs, dialect),
            step=RowCodec(Step, tables.steps, dialect),
            hook=RowCodec(Hook, tables.hooks, dialect),
            wait=RowCodec(Wait, tables.waits, dialect),
            event=RowCodec(Event, tables.events, dialect),
            message=RowCodec(QueueMessage, tables.queue_messages, dialect),
            schedule=RowCodec(Schedule, tables.schedules, dialect),
        )


def decode_events(codec: RowCodec[Event], rows: Iterable[RowLike]) -> list[Event]:
    """The events stored in ``rows`` (one run's, in log order), decoded.

    A stored row is not trusted to decode: its data may have been damaged on disk or
    edited by hand. One that does not (data that is not JSON, or not an object; an
    event type this version does not know; a missing column value) is reported as a
    ``CorruptedLogError`` naming the run, the event and its sequence, never as a bare
    ``JSONDecodeError`` from deep in a driver.

    Raises:
        CorruptedLogError: a row that does not decode; ``read_before`` holds the rows
            decoded before it.
    """
    events: list[Event] = []
    for row in rows:
        try:
            events.append(codec.from_row(row))
        except (ValueError, TypeError, ValidationError) as exc:
            raise _corrupted_row(row, exc, events) from exc
    return events


def _corrupted_row(row: RowLike, exc: Exception, read_before: list[Event]) -> CorruptedLogError:
    run_id, event_id = str(row["run_id"]), str(row["event_id"])
    try:
        sequence: int | None = int(row["seq"])
    except (KeyError, IndexError, TypeError, ValueError):
        sequence = None
    reason = _reason(row, exc)
    at = f" (sequence {sequence})" if sequence is not None else ""
    return CorruptedLogError(
        f"corrupted event log: run {run_id}, event {event_id}{at}: {reason}",
        run_id=run_id,
        event_id=event_id,
        sequence=sequence,
        reason=reason,
        read_before=read_before,
    )


def _reason(row: RowLike, exc: Exception) -> str:
    """One line saying what is wrong with a row that did not decode."""
    event_type = row["event_type"]
    if isinstance(exc, json.JSONDecodeError):
        return f"the data of this {event_type} event is not JSON ({exc.msg} at char {exc.pos})"
    if isinstance(exc, ValidationError):
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "event"
            if where == "event_type":
                problems.append(f"unknown event type {event_type!r}")
            else:
                problems.append(f"{where}: {error['msg']}")
        return f"this {event_type} event does not validate: {'; '.join(problems)}"
    return f"this {event_type} event does not decode: {type(exc).__name__}: {exc}"
