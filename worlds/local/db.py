"""The local world's database plumbing: the Engine, error translation, prepared
statements and the connections of the hot paths.

Why these choices:

- WAL journal + ``synchronous=NORMAL``: readers never block the writer, and a
  commit is one append to the WAL (no fsync per commit), durable against a
  process crash, which is what a worker dies of.
- Checkpoints (copying the WAL into the database, with the only fsync) run on
  a background thread instead of inside whichever commit crosses the
  threshold, so the hot path never pays for them (``Checkpointer``).
- Write transactions start with ``BEGIN IMMEDIATE``: the write lock is taken
  up front, so two processes never both read, decide and then deadlock on
  upgrading (SQLite would answer ``SQLITE_BUSY`` without retrying). The driver's
  own transaction handling is off (``isolation_level = None``); a ``begin``
  event hook emits our ``BEGIN`` for Core connections.
- ``busy_timeout`` 30 s: writers from several processes queue instead of failing.
- The hot paths (appending events, the queue, record reads) run Core statements
  compiled once (``PreparedSql``) on one kept DBAPI connection per thread
  (``ThreadConnections``): Core's per-execution machinery and a pool checkout
  per call would otherwise cost more than SQLite itself.
"""

from __future__ import annotations

import functools
import operator
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ClauseElement

from wfkit.worlds.base import EntityConflictError, WorldError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_SECONDS = 0.25
WRITE_OPTION = "wfkit_write"


def make_engine(path: Path) -> Engine:
    """One Engine for a database file: WAL, pooled connections usable from any thread,
    ``BEGIN IMMEDIATE`` for connections with the ``wfkit_write`` option."""
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=16,
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

    owner_pid = os.getpid()

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        if os.getpid() == owner_pid:
            # This process's Checkpointer does it; a forked child keeps SQLite's default.
            cursor.execute("PRAGMA wal_autocheckpoint = 0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn SQLAlchemy/SQLite errors into world errors, in this one place.

    A unique-constraint violation is a duplicate creation (EntityConflictError);
    any other database error is a WorldError naming the cause."""
    try:
        yield
    except exc.IntegrityError as error:
        raise EntityConflictError(f"refused by the database: {error.orig}") from error
    except sqlite3.IntegrityError as error:
        raise EntityConflictError(f"refused by the database: {error}") from error
    except exc.OperationalError as error:
        raise WorldError(f"local world database error: {error.orig}") from error
    except sqlite3.OperationalError as error:
        raise WorldError(f"local world database error: {error}") from error


_DIALECT = sqlite_dialect(paramstyle="qmark")


class PreparedSql:
    """A Core statement compiled once to SQLite SQL, for the write path.

    Writes run on the pooled DBAPI connection (see ``write_transaction``): the
    tables and statements stay SQLAlchemy Core, but each call skips Core's
    per-execution machinery, which would otherwise cost more than SQLite itself."""

    __slots__ = ("_pick", "defaults", "names", "sql")

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        compiled: Any = statement.compile(
            dialect=_DIALECT, column_keys=list(column_keys) if column_keys else None
        )
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults = {name: compiled.binds[name].value for name in self.names}
        # C-speed picking for the common case where ``values`` names every parameter.
        self._pick = operator.itemgetter(*self.names) if len(self.names) > 1 else None

    def args(self, values: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """Positional parameters from named ``values`` (literals compiled in as defaults)."""
        if not values:
            return tuple(self.defaults[name] for name in self.names)
        if self._pick is not None:
            try:
                picked: tuple[Any, ...] = self._pick(values)
                return picked
            except KeyError:
                pass
        return tuple(values[name] if name in values else self.defaults[name] for name in self.names)


class WriteLockBusy(Exception):
    """The write gate is held by another process (or thread), and the caller asked
    not to wait for it (``WriteGate.acquire(wait=False)``)."""


class WriteGate:
    """Queues writers, across threads and processes, before ``BEGIN IMMEDIATE``.

    SQLite's own wait for a busy database sleeps in steps of up to 100 ms, so
    with several writer processes one transaction could stall for most of a
    second while the lock was free again after 100 µs. Writers of this process
    queue on a lock; processes queue on ``flock`` of ``<db>-wlock``, which the
    kernel hands over as soon as it is released. Where ``fcntl`` is missing
    (Windows), only threads queue and SQLite's busy timeout does the rest."""

    def __init__(self, database: Path) -> None:
        self._path = f"{database}-wlock"
        self._lock = threading.RLock()  # re-entry fails loudly in SQLite, never hangs
        self._fd: int | None = None
        self._pid = os.getpid()

    def acquire(self, *, wait: bool = True) -> int | None:
        """Take the gate for one write transaction; pass the result to ``release``.

        Raises:
            WriteLockBusy: ``wait`` is False and another thread or process holds it.
        """
        if self._pid != os.getpid():
            self.reset_after_fork()
        if not self._lock.acquire(blocking=wait):
            raise WriteLockBusy
        try:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise WriteLockBusy from None
        except BaseException:
            self._lock.release()
            raise
        return fd

    def release(self, fd: int | None) -> None:
        """Give the gate back (``fd``: what ``acquire`` returned)."""
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the gate for one write transaction."""
        fd = self.acquire()
        try:
            yield
        finally:
            self.release(fd)

    def _file(self) -> int | None:
        if fcntl is None:
            return None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def reset_after_fork(self) -> None:
        """A child gets its own lock and file description (a ``flock`` held through
        the parent's description would not exclude the parent)."""
        if self._pid != os.getpid():
            self._lock = threading.RLock()  # re-entry fails loudly in SQLite, never hangs
            self._fd = None  # the inherited descriptor is left to the parent
            self._pid = os.getpid()

    def close(self) -> None:
        """Close the lock file."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class ThreadConnections:
    """One DBAPI connection per thread, checked out of the Engine's pool once and
    kept: the hot paths then pay no pool checkout per transaction.

    Connections of threads that have ended go back to the pool when the next
    thread checks one out; ``close`` returns them all."""

    def __init__(self, engine: Engine, gate: WriteGate | None = None) -> None:
        self._engine = engine
        self.gate = gate
        self.on_write_begin: Callable[[sqlite3.Cursor], Callable[[], None] | None] | None = None
        """Called in each write transaction right after its BEGIN, with its cursor: a
        chance to add writes that may ride on any transaction (the queue's acks);
        returns what to call when that transaction is rolled back, if anything."""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._held: list[tuple[threading.Thread, Any]] = []
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=functools.partial(_reset_in_child, weakref.ref(self)))

    def get(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: we issue BEGIN ourselves)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._pid != os.getpid():
            connection = self._check_out()
        return connection

    def reset_after_fork(self) -> None:
        """Forget the parent's connections (a forked child must never use them)."""
        if self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._local = threading.local()
            self._lock = threading.Lock()
            self._held = []
            self._pid = os.getpid()

    def _check_out(self) -> sqlite3.Connection:
        self.reset_after_fork()
        pooled = self._engine.raw_connection()
        with self._lock:
            still_held = []
            for thread, other in self._held:
                if thread.is_alive():
                    still_held.append((thread, other))
                else:
                    other.close()
            still_held.append((threading.current_thread(), pooled))
            self._held = still_held
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        self._local.connection = connection
        return connection

    def close(self) -> None:
        """Return every held connection to the pool."""
        with self._lock:
            held, self._held = self._held, []
        for _thread, pooled in held:
            pooled.close()
        self._local = threading.local()


def _reset_in_child(ref: weakref.ref[ThreadConnections]) -> None:
    connections = ref()
    if connections is not None:
        connections.reset_after_fork()


def write_transaction(connections: ThreadConnections, *, wait: bool = True) -> WriteTransaction:
    """A ``BEGIN IMMEDIATE`` transaction on this thread's connection, as a DBAPI
    cursor whose rows are ``sqlite3.Row`` (mapping access). Commits on success,
    rolls back on any error; errors are translated as ``translated_errors`` does.

    Raises:
        WriteLockBusy: on entering, when ``wait`` is False and the write gate is
            held elsewhere (nothing was begun).
    """
    return WriteTransaction(connections, wait=wait)


class WriteTransaction:
    """``write_transaction`` as a plain context-manager class: every write of the
    hot path goes through it, and three nested generator context managers (the
    error translation, the gate, the transaction) cost more than the SQL."""

    __slots__ = ("_connections", "_cursor", "_dbapi", "_fd", "_gate", "_undo", "_wait")
    _cursor: sqlite3.Cursor
    _dbapi: sqlite3.Connection
    _fd: int | None

    def __init__(self, connections: ThreadConnections, *, wait: bool = True) -> None:
        self._connections = connections
        self._gate = connections.gate
        self._wait = wait
        self._undo: Callable[[], None] | None = None

    def __enter__(self) -> sqlite3.Cursor:
        try:
            self._fd = self._gate.acquire(wait=self._wait) if self._gate is not None else None
        except BaseException as error:
            _raise_translated(error)
            raise
        try:
            self._dbapi = dbapi = self._connections.get()
            self._cursor = cursor = dbapi.cursor()
            cursor.row_factory = sqlite3.Row
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except BaseException:
                cursor.close()
                raise
            on_begin = self._connections.on_write_begin
            if on_begin is not None:
                try:
                    self._undo = on_begin(cursor)
                except BaseException:
                    dbapi.execute("ROLLBACK")
                    cursor.close()
                    raise
        except BaseException as error:
            self._release()
            _raise_translated(error)
            raise
        return cursor

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any
    ) -> None:
        cursor = self._cursor
        try:
            if kind is None:
                try:
                    cursor.execute("COMMIT")
                except BaseException:
                    self._rolled_back()
                    if self._dbapi.in_transaction:
                        self._dbapi.execute("ROLLBACK")
                    raise
            else:
                self._rolled_back()
                if self._dbapi.in_transaction:
                    self._dbapi.execute("ROLLBACK")
        except BaseException as failure:
            cursor.close()
            self._release()
            _raise_translated(failure)
            raise
        cursor.close()
        self._release()
        if error is not None:
            _raise_translated(error)

    def _rolled_back(self) -> None:
        if self._undo is not None:
            undo, self._undo = self._undo, None
            undo()

    def _release(self) -> None:
        if self._gate is not None:
            self._gate.release(self._fd)


def _raise_translated(error: BaseException) -> None:
    """Raise the world error ``translated_errors`` makes of ``error``; return when
    it is not a database error (the caller re-raises it as it is)."""
    translated = translate_error(error)
    if translated is not None:
        raise translated from error


def translate_error(error: BaseException) -> WorldError | None:
    """The world error ``translated_errors`` makes of ``error``; None when it is not
    a database error."""
    if isinstance(error, exc.IntegrityError):
        return EntityConflictError(f"refused by the database: {error.orig}")
    if isinstance(error, sqlite3.IntegrityError):
        return EntityConflictError(f"refused by the database: {error}")
    if isinstance(error, exc.OperationalError):
        return WorldError(f"local world database error: {error.orig}")
    if isinstance(error, sqlite3.OperationalError):
        return WorldError(f"local world database error: {error}")
    return None


def fetch_all(connections: ThreadConnections, sql: PreparedSql, **values: Any) -> list[Any]:
    """Run one prepared SELECT outside any transaction (autocommit: the statement
    reads one consistent snapshot); returns its ``sqlite3.Row`` rows."""
    with translated_errors():
        cursor = connections.get().cursor()
        cursor.row_factory = sqlite3.Row
        try:
            return cursor.execute(sql.sql, sql.args(values)).fetchall()
        finally:
            cursor.close()


class Checkpointer:
    """Copies the WAL into the database file from a background thread.

    SQLite would otherwise checkpoint inside the commit that crosses 1000 WAL
    pages, fsync included, making one commit in a few hundred ~100x slower.
    A passive checkpoint never blocks writers or readers; several processes
    each running one is harmless. Each round first calls ``every_round`` (the
    world's: write the queue's acks that no write transaction took)."""

    def __init__(
        self,
        engine: Engine,
        interval: float = CHECKPOINT_SECONDS,
        every_round: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._every_round = every_round
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wfkit-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            pooled = self._engine.raw_connection()
        except Exception:  # the world is being closed; nothing to checkpoint
            return
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        try:
            while not self._stop.wait(self._interval):
                if self._every_round is not None:
                    try:
                        self._every_round()
                    except Exception:  # busy or closing: the next round (or close) does it
                        pass
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    continue  # busy or closing: try again next round
        finally:
            pooled.close()

    def stop(self) -> None:
        """Ask the thread to end (without waiting for it)."""
        self._stop.set()

    def close(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
