"""The local world's streams: chunks as BLOB rows, one ``streams`` row per stream
holding the next index and the closed flag. Readers waiting for a chunk poll
(other processes cannot signal us) and wake at once for writes in this process.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worlds.base import EntityConflictError, StreamPage
from worlds.local.db import translated_errors
from worlds.local.schema import stream_chunks_table, streams_table

_T, _C = streams_table.c, stream_chunks_table.c
POLL_SECONDS = 0.05


class LocalStreams:
    """``world.streams`` of the local world."""

    def __init__(self, engine: Engine, write_engine: Engine, changed: threading.Condition) -> None:
        self._engine = engine
        self._write_engine = write_engine
        self._changed = changed

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def append(self, run_id: str, name: str, data: bytes) -> int:
        """Append a chunk; returns its index.

        Raises:
            EntityConflictError: the stream is closed.
        """
        key = (_T.run_id == run_id) & (_T.name == name)
        with translated_errors(), self._write_engine.begin() as conn:
            row = conn.execute(select(_T.next_index, _T.closed).where(key)).first()
            if row is None:
                index = 0
                conn.execute(
                    insert(streams_table).values(run_id=run_id, name=name, next_index=1, closed=0)
                )
            else:
                if row.closed:
                    raise EntityConflictError(f"stream {name!r} of run {run_id!r} is closed")
                index = row.next_index
                conn.execute(update(streams_table).where(key).values(next_index=index + 1))
            conn.execute(
                insert(stream_chunks_table).values(
                    run_id=run_id, name=name, chunk_index=index, data=bytes(data)
                )
            )
        self._notify()
        return int(index)

    def close(self, run_id: str, name: str) -> None:
        """Mark the stream finished (idempotent)."""
        statement = (
            sqlite_insert(streams_table)
            .values(run_id=run_id, name=name, next_index=0, closed=1)
            .on_conflict_do_update(index_elements=["run_id", "name"], set_={"closed": 1})
        )
        with translated_errors(), self._write_engine.begin() as conn:
            conn.execute(statement)
        self._notify()

    def read(
        self, run_id: str, name: str, *, start_index: int = 0, limit: int | None = None
    ) -> StreamPage:
        """Chunks from ``start_index`` (at most ``limit``); ``closed`` is true when
        the stream is closed and this page reaches its end."""
        query = (
            select(_C.data)
            .where(_C.run_id == run_id, _C.name == name, _C.chunk_index >= start_index)
            .order_by(_C.chunk_index)
        )
        if limit is not None:
            query = query.limit(limit)
        with translated_errors(), self._engine.connect() as conn:
            head = conn.execute(
                select(_T.next_index, _T.closed).where(_T.run_id == run_id, _T.name == name)
            ).first()
            chunks = [bytes(row[0]) for row in conn.execute(query)]
        next_index = start_index + len(chunks)
        closed = head is not None and bool(head.closed) and next_index >= head.next_index
        return StreamPage(chunks=chunks, next_index=next_index, closed=closed)

    def wait(self, run_id: str, name: str, *, after_index: int, timeout: float) -> None:
        """Block until chunk ``after_index`` exists, the stream closes, or ``timeout``."""
        deadline = time.monotonic() + timeout
        query = select(_T.next_index, _T.closed).where(_T.run_id == run_id, _T.name == name)
        while True:
            with translated_errors(), self._engine.connect() as conn:
                head = conn.execute(query).first()
            if head is not None and (head.closed or head.next_index > after_index):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._changed:
                self._changed.wait(min(remaining, POLL_SECONDS))

    def list(self, run_id: str) -> list[str]:
        """Names of the run's streams, sorted."""
        query = select(_T.name).where(_T.run_id == run_id).order_by(_T.name)
        with translated_errors(), self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]
