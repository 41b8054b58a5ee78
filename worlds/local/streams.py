"""The local world's streams: chunks as BLOB rows, one ``streams`` row per stream
holding the next index and the closed flag. Readers waiting for a chunk poll
(other processes cannot signal us) and wake at once for writes in this process.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wfkit.worlds.base import EntityConflictError, StreamPage, stream_start_index
from wfkit.worlds.local.db import PreparedSql, ThreadConnections, fetch_all, write_transaction
from wfkit.worlds.local.sql import TABLES

streams_table, stream_chunks_table = TABLES.streams, TABLES.stream_chunks
_T, _C = streams_table.c, stream_chunks_table.c
POLL_SECONDS = 0.05

_KEY = (_T.run_id == bindparam("run_id")) & (_T.name == bindparam("name"))
_HEAD = PreparedSql(select(_T.next_index, _T.closed).where(_KEY))
_NEW_STREAM = PreparedSql(
    insert(streams_table).values(
        run_id=bindparam("run_id"), name=bindparam("name"), next_index=1, closed=0
    )
)
_ADVANCE = PreparedSql(update(streams_table).where(_KEY).values(next_index=bindparam("next")))
_INSERT_CHUNK = PreparedSql(
    insert(stream_chunks_table).values(
        run_id=bindparam("run_id"),
        name=bindparam("name"),
        chunk_index=bindparam("index"),
        data=bindparam("data"),
    )
)
_CLOSE = PreparedSql(
    sqlite_insert(streams_table)
    .values(run_id=bindparam("run_id"), name=bindparam("name"), next_index=0, closed=1)
    .on_conflict_do_update(index_elements=["run_id", "name"], set_={"closed": 1})
)
_READ = PreparedSql(
    select(_C.data)
    .where(
        _C.run_id == bindparam("run_id"),
        _C.name == bindparam("name"),
        _C.chunk_index >= bindparam("start"),
    )
    .order_by(_C.chunk_index)
    .limit(bindparam("limit"))
)
_NAMES = PreparedSql(select(_T.name).where(_T.run_id == bindparam("run_id")).order_by(_T.name))


class LocalStreams:
    """``world.streams`` of the local world."""

    def __init__(self, connections: ThreadConnections, changed: threading.Condition) -> None:
        self._connections = connections
        self._changed = changed

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def append(self, run_id: str, name: str, data: bytes) -> int:
        """Append a chunk; returns its index.

        Raises:
            EntityConflictError: the stream is closed.
        """
        key = {"run_id": run_id, "name": name}
        with write_transaction(self._connections) as cursor:
            head = cursor.execute(_HEAD.sql, _HEAD.args(key)).fetchone()
            if head is None:
                index = 0
                cursor.execute(_NEW_STREAM.sql, _NEW_STREAM.args(key))
            else:
                if head["closed"]:
                    raise EntityConflictError(f"stream {name!r} of run {run_id!r} is closed")
                index = int(head["next_index"])
                cursor.execute(_ADVANCE.sql, _ADVANCE.args({**key, "next": index + 1}))
            cursor.execute(
                _INSERT_CHUNK.sql, _INSERT_CHUNK.args({**key, "index": index, "data": bytes(data)})
            )
        self._notify()
        return index

    def close(self, run_id: str, name: str) -> None:
        """Mark the stream finished (idempotent)."""
        with write_transaction(self._connections) as cursor:
            cursor.execute(_CLOSE.sql, _CLOSE.args({"run_id": run_id, "name": name}))
        self._notify()

    def read(
        self, run_id: str, name: str, *, start_index: int = 0, limit: int | None = None
    ) -> StreamPage:
        """Chunks from ``start_index`` (at most ``limit``; a negative index counts from
        the end); ``closed`` is true when the stream is closed and this page reaches its end."""
        key = {"run_id": run_id, "name": name}
        # The head first: chunks appended after it was read only make the page longer.
        heads = fetch_all(self._connections, _HEAD, **key)
        length = int(heads[0]["next_index"]) if heads else 0
        start_index = stream_start_index(start_index, length)
        rows = fetch_all(
            self._connections,
            _READ,
            **key,
            start=start_index,
            limit=-1 if limit is None else limit,
        )
        chunks = [bytes(row[0]) for row in rows]
        next_index = start_index + len(chunks)
        closed = bool(heads) and bool(heads[0]["closed"]) and next_index >= heads[0]["next_index"]
        return StreamPage(chunks=chunks, next_index=next_index, closed=closed)

    def wait(self, run_id: str, name: str, *, after_index: int, timeout: float) -> None:
        """Block until chunk ``after_index`` exists, the stream closes, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            heads = fetch_all(self._connections, _HEAD, run_id=run_id, name=name)
            if heads and (heads[0]["closed"] or heads[0]["next_index"] > after_index):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._changed:
                self._changed.wait(min(remaining, POLL_SECONDS))

    def list(self, run_id: str) -> list[str]:
        """Names of the run's streams, sorted."""
        return [row[0] for row in fetch_all(self._connections, _NAMES, run_id=run_id)]
