"""Counting what the Postgres world sends: statements and round trips."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest

from wfkit.worlds.postgres.session import _RawStatement


@contextlib.contextmanager
def count_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count statements psycopg sends and round trips (a pipeline, or a statement
    outside one, is one round trip), and those the world sends to libpq itself
    (``session._RawStatement``, alone or pipelined; preparing a statement, once per connection, is no
    more counted than psycopg's own preparing is)."""
    counts = {"statements": 0, "round_trips": 0}
    piped: list[bool] = [False]
    execute: Callable[..., Any] = psycopg.Cursor.execute
    pipeline: Callable[..., Any] = psycopg.Connection.pipeline
    raw_execute: Callable[..., Any] = _RawStatement.execute

    def counting_raw_execute(*args: Any) -> Any:
        rows = raw_execute(*args)
        if rows is not None:  # None: nothing sent, psycopg sends it (counted there)
            counts["statements"] += 1
            counts["round_trips"] += 1
        return rows

    def counting_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["statements"] += 1
        counts["round_trips"] += 0 if piped[0] else 1
        return execute(self, *args, **kwargs)

    @contextlib.contextmanager
    def counting_pipeline(self: Any) -> Iterator[Any]:
        counts["round_trips"] += 1
        piped[0] = True
        try:
            with pipeline(self) as pipe:
                yield pipe
        finally:
            piped[0] = False

    monkeypatch.setattr(psycopg.Cursor, "execute", counting_execute)
    monkeypatch.setattr(psycopg.Connection, "pipeline", counting_pipeline)
    monkeypatch.setattr(_RawStatement, "execute", counting_raw_execute)
    raw_pipeline: Callable[..., Any] = _RawStatement.pipeline

    def counting_raw_pipeline(connection: Any, batch: Sequence[Any]) -> Any:
        results = raw_pipeline(connection, batch)
        if results is not None:  # None: nothing sent, psycopg's pipeline sends it
            counts["statements"] += len(batch)
            counts["round_trips"] += 1
        return results

    monkeypatch.setattr(_RawStatement, "pipeline", counting_raw_pipeline)
    yield counts
    monkeypatch.undo()
