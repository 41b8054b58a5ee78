"""The local world: SQLite (WAL) through SQLAlchemy Core, the embedded default.

One file holds the event log, the materialized records, the queue and the
streams; several worker processes on one machine may share it (write
transactions take SQLite's write lock up front with ``BEGIN IMMEDIATE``). The tables
and codecs are the shared SQL layer's (``wfkit.worlds.sql``); ``db`` holds the
SQLite plumbing and its reasons.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.engine import make_url

from wfkit.worlds.base import (
    Events,
    Hooks,
    Queue,
    Runs,
    Schedules,
    Steps,
    Streams,
    Waits,
    WorldError,
)
from wfkit.worlds.local.db import (
    WRITE_OPTION,
    Checkpointer,
    PreparedSql,
    ThreadConnections,
    WriteGate,
    fetch_all,
    make_engine,
    write_transaction,
)
from wfkit.worlds.local.events import LocalEvents
from wfkit.worlds.local.migrate import ensure_schema
from wfkit.worlds.local.queue import LocalQueue, enqueue_in
from wfkit.worlds.local.sql import CODECS, STATEMENTS
from wfkit.worlds.local.streams import LocalStreams
from wfkit.worlds.sql import Query, SqlHooks, SqlRuns, SqlSchedules, SqlSteps, SqlWaits

__all__ = ["LocalWorld"]

_QUEUES_TO_FLUSH_AT_EXIT: weakref.WeakSet[LocalQueue] = weakref.WeakSet()


@atexit.register
def _flush_acks_at_exit() -> None:
    """Write the acks a process leaves unwritten as it ends normally (``wfkit worker``
    stopped by SIGTERM does not close its world): otherwise those messages would be
    redelivered when their leases end."""
    for queue in list(_QUEUES_TO_FLUSH_AT_EXIT):
        try:
            queue.flush_acks()
        except Exception:  # the process is ending: a redelivery at worst
            pass


class LocalWorld:
    """A World in one SQLite file (``WFKIT_WORLD=local`` or ``sqlite:///path``)."""

    name = "local"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the database at ``path``.

        An older file is migrated in place (``wfkit.worlds.local.migrate``).

        Raises:
            SchemaVersionError: the file was written by a newer wfkit, or records no
                valid schema version; it is left untouched.
        """
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine(self.path)
        self._gate = WriteGate(self.path)
        write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        try:
            ensure_schema(write_engine, self.path, self._gate)
        except BaseException:
            self._engine.dispose()
            self._gate.close()
            raise
        changed = threading.Condition()
        self._connections = ThreadConnections(self._engine, self._gate)
        queue = LocalQueue(self._engine, self._connections, changed)
        self._queue = queue
        # Acks ride on any write transaction; the checkpointer writes those left over.
        self._connections.on_write_begin = queue.write_pending_acks
        self._checkpointer = Checkpointer(self._engine, every_round=queue.flush_acks)
        _QUEUES_TO_FLUSH_AT_EXIT.add(queue)  # a process that never closes its world
        # A world dropped without close() must not leave its thread running.
        weakref.finalize(self, self._checkpointer.stop)
        self.events: Events = LocalEvents(
            self._connections, enqueue=enqueue_in, on_enqueued=queue.notify
        )
        self.runs: Runs = SqlRuns(STATEMENTS, CODECS.run, self._prepare)
        self.steps: Steps = SqlSteps(STATEMENTS, CODECS.step, self._prepare)
        self.hooks: Hooks = SqlHooks(STATEMENTS, CODECS.hook, self._prepare)
        self.waits: Waits = SqlWaits(STATEMENTS, CODECS.wait, self._prepare)
        self.queue: Queue = queue
        self.streams: Streams = LocalStreams(self._connections, changed)
        self.schedules: Schedules = SqlSchedules(
            STATEMENTS.tables, CODECS.schedule, self._prepare, self._prepare_write
        )

    def _prepare(self, statement: Select[Any]) -> Query:
        """A record read on this thread's kept connection (autocommit: one statement
        reads one consistent snapshot)."""
        return functools.partial(fetch_all, self._connections, PreparedSql(statement))

    def _prepare_write(self, statement: Insert | Update | Delete) -> Query:
        """One write statement in its own write transaction; returns its rows."""
        sql = PreparedSql(statement)
        connections = self._connections

        def write(**values: Any) -> list[Any]:
            with write_transaction(connections) as cursor:
                return cursor.execute(sql.sql, sql.args(values)).fetchall()

        return write

    @classmethod
    def from_spec(cls, spec: str, *, root: str | os.PathLike[str] | None = None) -> LocalWorld:
        """Open the world a spec names.

        Args:
            spec: ``"local"`` (the file ``<root>/.wfkit/wfkit.db``) or a
                ``sqlite:///path`` URL (``sqlite:////abs/path`` for an absolute one).
            root: the project root for ``"local"`` (default: the current directory).

        Raises:
            ValueError: the spec is neither, or names an in-memory database.
        """
        if spec == "local":
            base = Path(root) if root is not None else Path.cwd()
            return cls(base / ".wfkit" / "wfkit.db")
        if spec.startswith("sqlite:"):
            database = make_url(spec).database
            if not database or database == ":memory:":
                raise ValueError(f"{spec!r}: the local world needs a database file")
            path = Path(database)
            if not path.is_absolute() and root is not None:
                path = Path(root) / path
            return cls(path)
        raise ValueError(f"not a local world spec: {spec!r} (expected 'local' or sqlite:///path)")

    def close(self) -> None:
        """Write the acks not yet written, release the database connections."""
        try:
            self._queue.flush_acks()
        except WorldError:
            pass  # as if the process had ended: those messages are redelivered
        self._checkpointer.close()
        self._connections.close()
        self._engine.dispose()
        self._gate.close()

    def __repr__(self) -> str:
        return f"LocalWorld({str(self.path)!r})"
