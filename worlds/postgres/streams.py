"""``world.streams`` of the Postgres world: chunks in a table, a head row per stream.

``streams`` holds one head row per (run_id, name): ``next_index`` and the close
marker. An append bumps the head (``INSERT … ON CONFLICT DO UPDATE … WHERE NOT
closed``, whose row lock serializes appenders of one stream) and inserts the
chunk at the old ``next_index``, both in one statement; on a closed stream the
head refuses and nothing is inserted. A row trigger on ``streams`` NOTIFYs the
readers of that stream (``Listener``), so ``wait`` returns within milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine import Engine

from wfkit.worlds.base import EntityConflictError, StreamPage, stream_start_index
from wfkit.worlds.postgres.notify import Listener
from wfkit.worlds.postgres.session import fetch_rows, fetch_scalar
from wfkit.worlds.postgres.sql import TableNames

__all__ = ["PostgresStreams"]


class PostgresStreams:
    """``world.streams`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames, listener: Listener) -> None:
        self._engine = engine
        self._names = names
        self._listener = listener
        heads, chunks = names.streams, names.stream_chunks
        self._append_sql = (
            f"WITH head AS (INSERT INTO {heads} AS h"
            " (run_id, name, next_index, closed, created_at, updated_at)"
            " VALUES (%(run_id)s, %(name)s, 1, false, clock_timestamp(), clock_timestamp())"
            " ON CONFLICT (run_id, name) DO UPDATE"
            " SET next_index = h.next_index + 1, updated_at = clock_timestamp()"
            " WHERE NOT h.closed RETURNING h.next_index - 1 AS idx)"
            f" INSERT INTO {chunks} (run_id, name, idx, data, created_at)"
            " SELECT %(run_id)s, %(name)s, idx, %(data)s, clock_timestamp() FROM head"
            " RETURNING idx"
        )
        self._close_sql = (
            f"INSERT INTO {heads} AS h (run_id, name, next_index, closed, created_at, updated_at)"
            " VALUES (%(run_id)s, %(name)s, 0, true, clock_timestamp(), clock_timestamp())"
            " ON CONFLICT (run_id, name) DO UPDATE SET closed = true, updated_at = clock_timestamp()"
            " WHERE NOT h.closed"
        )
        self._read_sql = (
            "SELECT h.next_index, h.closed, c.idx, c.data"
            f" FROM {heads} AS h LEFT JOIN LATERAL (SELECT idx, data FROM {chunks} AS c"
            " WHERE c.run_id = h.run_id AND c.name = h.name AND c.idx >= CASE"
            " WHEN %(start)s < 0 THEN GREATEST(h.next_index + %(start)s, 0) ELSE %(start)s END"
            " ORDER BY c.idx LIMIT %(limit)s) AS c ON true"
            " WHERE h.run_id = %(run_id)s AND h.name = %(name)s ORDER BY c.idx"
        )
        self._ready_sql = (
            f"SELECT closed OR next_index > %(after)s FROM {heads}"
            " WHERE run_id = %(run_id)s AND name = %(name)s"
        )

    def _scalar(self, sql: str, params: dict[str, Any]) -> Any:
        return fetch_scalar(self._engine, sql, params)

    def append(self, run_id: str, name: str, data: bytes) -> int:
        """Append a chunk and return its index (0, 1, …).

        Raises:
            EntityConflictError: the stream is closed.
        """
        index = self._scalar(
            self._append_sql, {"run_id": run_id, "name": name, "data": bytes(data)}
        )
        if index is None:
            raise EntityConflictError(f"stream {name!r} of run {run_id!r} is closed")
        return int(index)

    def close(self, run_id: str, name: str) -> None:
        """Mark the stream finished (idempotent; creates an empty closed stream if new)."""
        self._scalar(self._close_sql, {"run_id": run_id, "name": name})

    def read(
        self, run_id: str, name: str, *, start_index: int = 0, limit: int | None = None
    ) -> StreamPage:
        """Chunks from ``start_index`` (at most ``limit``); ``closed`` once the page
        reaches the end of a closed stream."""
        params = {"run_id": run_id, "name": name, "start": start_index, "limit": limit}

        rows = fetch_rows(self._engine, self._read_sql, params)
        if not rows:
            return StreamPage(chunks=[], next_index=max(start_index, 0), closed=False)
        # The query resolved a negative start against the head it read in the same statement.
        start_index = stream_start_index(start_index, int(rows[0]["next_index"]))
        chunks = [bytes(row["data"]) for row in rows if row["idx"] is not None]
        next_index = start_index + len(chunks)
        closed = bool(rows[0]["closed"]) and next_index >= int(rows[0]["next_index"])
        return StreamPage(chunks=chunks, next_index=next_index, closed=closed)

    def wait(self, run_id: str, name: str, *, after_index: int, timeout: float) -> None:
        """Block until the stream has a chunk at ``after_index`` or is closed, or
        ``timeout`` passes (woken by NOTIFY, with a short poll as safety net)."""
        params = {"run_id": run_id, "name": name, "after": after_index}
        deadline = time.monotonic() + timeout
        with self._listener.subscribe(("stream", run_id, name)) as subscription:
            while True:
                subscription.mark()
                if self._scalar(self._ready_sql, params):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                subscription.wait(remaining)

    def list(self, run_id: str) -> list[str]:
        """Names of the run's streams, sorted."""

        rows = fetch_rows(
            self._engine,
            f"SELECT name FROM {self._names.streams} WHERE run_id = %(run_id)s ORDER BY name",
            {"run_id": run_id},
        )
        return [str(row["name"]) for row in rows]
