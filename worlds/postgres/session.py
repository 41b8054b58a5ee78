"""Pooled connections, pipelined statements and the retrying transaction runner.

The pool is SQLAlchemy's (``QueuePool``, no pre-ping: a connection found dead
is discarded and the transaction retried), its connections in autocommit mode; statements go straight to the psycopg connection (hand-written
SQL, nothing to compile, psycopg prepares repeated statements on the server).
A world's engine keeps the connections it has finished with checked out, at
hand, up to the pool's size (``keep_idle_connections``): taking one back is a
list's ``pop``, where a check-out and check-in through the pool (its queue,
lock, condition, connection wrapper, weak reference and reset) cost more
client CPU than the rest of a sequential step's statement.
A ``Session`` opens its transaction lazily and *pipelines*: ``BEGIN`` travels
with the first statements and ``COMMIT`` with the last writes, so an event batch
costs two round trips — one to lock and read, one to write and commit.
"""

from __future__ import annotations

import atexit
import itertools
import random
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import generators, pq
from psycopg.adapt import Transformer
from sqlalchemy.engine import Engine

from wfkit.worlds.postgres.errors import PostgresWorldError, RetryTransaction, translate_errors

__all__ = [
    "Session",
    "Statement",
    "abandon_idle_connections",
    "execute_alone",
    "fetch_rows",
    "fetch_scalar",
    "keep_idle_connections",
    "release_idle_connections",
    "run_transaction",
    "text_array",
]

T = TypeVar("T")
Statement = tuple[str, dict[str, Any] | None]
Rows = list[dict[str, Any]]

_MAX_ATTEMPTS = 8
UNAVAILABLE_BUDGET = 15.0
"""Seconds to keep retrying while the server cannot be reached."""
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_IDLE_STATUS = pq.TransactionStatus.IDLE
_INTRANS = pq.TransactionStatus.INTRANS


def _dict_row(cursor: Any) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """psycopg's ``dict_row`` without building ``cursor.description`` (measurably
    cheaper per statement on the hot path): names straight from the result."""
    result = cursor.pgresult
    if result is None or result.status != _TUPLES_OK:
        return lambda values: {}
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
    return lambda values: dict(zip(names, values, strict=True))


def _fetch(cursor: Any) -> Rows:
    result = cursor.pgresult
    return cursor.fetchall() if result is not None and result.status == _TUPLES_OK else []


class Session:
    """One connection's unit of work: a transaction or a single read.

    Args:
        connection: the psycopg connection (autocommit mode).
        transactional: open a transaction with the first statement.
    """

    def __init__(self, connection: psycopg.Connection[Any], *, transactional: bool) -> None:
        self._connection = connection
        self._begin_pending = transactional
        self.in_transaction = False
        self.committing = False

    def query(self, *statements: Statement) -> list[Rows]:
        """Send ``statements`` in one round trip; return each one's rows ([] for none)."""
        batch: list[Statement] = list(statements)
        began = self._begin_pending
        if began:
            batch.insert(0, ("BEGIN", None))
            self._begin_pending = False
            self.in_transaction = True
        connection = self._connection
        if len(batch) == 1:
            sql, params = batch[0]
            rows = _RawStatement.execute(
                connection, sql, params, in_transaction=self.in_transaction
            )
            if rows is None:
                cursor = connection.cursor(row_factory=_dict_row)
                cursor.execute(sql, params)
                rows = _fetch(cursor)
            return [rows]
        piped = _RawStatement.pipeline(connection, batch)
        if piped is not None:
            return piped[1:] if began else piped
        cursors = []
        with connection.pipeline():
            for sql, params in batch:
                cursor = connection.cursor(row_factory=_dict_row)
                cursor.execute(sql, params)
                cursors.append(cursor)
        results = [_fetch(cursor) for cursor in cursors]
        return results[1:] if began else results

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> Rows:
        """The rows of one statement."""
        return self.query((sql, params))[0]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row of one statement (None without rows)."""
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def commit(self, statements: Sequence[Statement] = ()) -> list[Rows]:
        """Send ``statements`` and COMMIT together (or just the statements outside a
        transaction); each statement's rows.

        With the transaction not begun yet, ``BEGIN``, the statements and
        ``COMMIT`` all travel in one round trip."""
        batch = list(statements)
        closing = self.in_transaction or self._begin_pending
        if closing:
            batch.append(("COMMIT", None))
        if not batch:
            return []
        self.committing = True
        results = self.query(*batch)
        self.in_transaction = False
        self._begin_pending = False
        return results[:-1] if closing else results


class _Idle:
    """The pooled connections of one engine that are checked out but in no one's
    use, most recently used last; ``size`` at most are kept."""

    __slots__ = ("connections", "size")

    def __init__(self, size: int) -> None:
        self.connections: list[Any] = []
        self.size = size


_IDLE_BY_ENGINE: weakref.WeakKeyDictionary[Engine, _Idle] = weakref.WeakKeyDictionary()
_ABANDONED: list[Any] = []


def keep_idle_connections(engine: Engine, size: int) -> None:
    """Keep up to ``size`` of ``engine``'s connections checked out between uses
    (each idle, outside any transaction), to be taken again without the pool.

    Only for a pool that does nothing at check-out (no pre-ping, no recycling):
    a connection found dead when used is discarded and the work retried, as
    with the pool."""
    _IDLE_BY_ENGINE[engine] = _Idle(size)


def release_idle_connections(engine: Engine) -> None:
    """Check the idle connections in again (before the pool is disposed of)."""
    idle = _IDLE_BY_ENGINE.get(engine)
    while idle is not None and idle.connections:
        idle.connections.pop().close()


def abandon_idle_connections(engine: Engine) -> None:
    """In a forked child: forget the parent's idle connections without touching
    them (no reset, no close: their sockets are the parent's), and keep them
    referenced so that no finalizer ever does either."""
    idle = _IDLE_BY_ENGINE.get(engine)
    if idle is not None:
        _ABANDONED.extend(idle.connections)
        idle.connections.clear()


@atexit.register
def _release_all_idle_connections() -> None:
    """At exit, a world left open has its kept connections back in its pool, as
    they were before (none is garbage-collected still open)."""
    for engine in list(_IDLE_BY_ENGINE):
        release_idle_connections(engine)


def _checkout(engine: Engine) -> Any:
    """An idle connection kept for ``engine``, else one from its pool.

    Raises:
        The translated error of a connection that could not be made."""
    idle = _IDLE_BY_ENGINE.get(engine)
    if idle is not None and idle.connections:
        try:
            return idle.connections.pop()
        except IndexError:
            pass  # another thread took the last one meanwhile
    with translate_errors():
        return engine.raw_connection()


def _checkin(engine: Engine, pooled: Any) -> None:
    """Keep ``pooled`` (its work done) for the next use; close it when as many
    as the pool's size are kept already, as the pool closes its overflow (had it
    gone back to the pool instead, up to twice that many would sit idle on the
    server). One not idle goes back to the pool, which rolls it back."""
    idle = _IDLE_BY_ENGINE.get(engine)
    if idle is None or pooled.driver_connection.pgconn.transaction_status != _IDLE_STATUS:
        pooled.close()
    elif len(idle.connections) < idle.size:
        idle.connections.append(pooled)
    else:
        pooled.invalidate()  # closed; its record goes back to the pool, to reconnect


def run_transaction(
    engine: Engine, work: Callable[[Session], T], *, transactional: bool = True
) -> T:
    """Run ``work(session)`` on a pooled connection and commit, retrying when safe.

    ``work`` may call ``session.commit(final_statements)`` itself (to send its
    last writes with the COMMIT); otherwise the runner commits after it returns.
    The whole function is re-run on a serialization failure, a deadlock, a lost
    race for a hook token, or a connection that dropped before COMMIT, with a
    short jittered backoff: up to a few attempts for conflicts, and for an
    unreachable server until ``UNAVAILABLE_BUDGET`` seconds have passed (enough
    to ride through a server restart).

    Returns:
        What ``work`` returned.

    Raises:
        Whatever ``work`` raises (nothing is committed then), and the translated
        database errors of ``errors.translate_errors``.
    """
    return _retrying(lambda: _attempt(engine, work, transactional))


def _retrying(attempt_once: Callable[[], T]) -> T:
    """``attempt_once()`` until it does not ask for a retry: a serialization failure
    or deadlock at most ``_MAX_ATTEMPTS`` times; an unreachable server (nothing was
    sent: a connection lost with work in flight raised already) for up to
    ``UNAVAILABLE_BUDGET`` seconds; with a growing, jittered pause between."""
    attempt = 0
    started = time.monotonic()
    while True:
        attempt += 1
        try:
            return attempt_once()
        except RetryTransaction as retry:
            if retry.disconnected:
                if time.monotonic() - started > UNAVAILABLE_BUDGET:
                    raise retry.final from retry.__cause__
            elif attempt >= _MAX_ATTEMPTS:
                raise retry.final from retry.__cause__
            time.sleep(min(1.0, 0.01 * 2**attempt) * random.uniform(0.5, 1.0))


def execute_alone(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> Rows:
    """Run one writing statement on its own (autocommit: its own transaction, the
    COMMIT implied); its rows.

    ``run_transaction(engine, lambda s: s.commit([(sql, params)])[0],
    transactional=False)`` exactly — same errors, same retries (a serialization
    failure or deadlock re-runs it, an unreachable server is waited for up to
    ``UNAVAILABLE_BUDGET`` seconds before anything is sent; a connection lost with
    it in flight raises ``DatabaseUnavailableError``, the outcome unknown) — at about half the client
    CPU: no ``Session``, and a statement whose parameters are all text or NULL
    goes straight to libpq as a statement prepared once per connection
    (``_RawStatement``), without psycopg's cursor, query conversion and
    adaptation (a sequential step's one statement spent more CPU there than the
    round trip itself)."""
    return _retrying(lambda: _execute_alone(engine, sql, params))


def _execute_alone(
    engine: Engine, sql: str, params: dict[str, Any] | None, *, committing: bool = True
) -> Rows:
    """One attempt of ``execute_alone`` (``committing``: a connection lost with the
    statement in flight raises ``DatabaseUnavailableError``), or of ``fetch_rows``
    (not ``committing``: it asks for a retry, as ``run_transaction`` does before
    COMMIT)."""
    pooled = _checkout(engine)
    try:
        connection = pooled.driver_connection
        if not isinstance(connection, psycopg.Connection):
            raise TypeError("PostgresWorld needs the psycopg 3 driver")
        with translate_errors(committing=committing):
            rows = _RawStatement.execute(connection, sql, params)
            if rows is None:
                cursor = connection.cursor(row_factory=_dict_row)
                cursor.execute(sql, params)
                rows = _fetch(cursor)
    except BaseException as error:
        _discard_transaction(pooled, error)
        pooled.close()
        raise
    _checkin(engine, pooled)
    return rows


_KEPT = 256
"""Statements prepared on one connection at most (psycopg keeps 100 of its own):
past it, a new statement text goes through psycopg on that connection."""
_CONVERTED = 4096
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_NAMES = itertools.count()


class _RawStatement:
    """A statement text converted for libpq (``$n`` placeholders) and the names of
    its parameters, prepared on each connection the first time it runs there.

    psycopg does the same on its own (it prepares a statement it has seen five
    times), through a cursor, its query cache and its adapters: for
    text-or-NULL parameters, which psycopg sends as text of unknown type, this
    sends the same bytes (``StrDumperUnknown``), so the server types and plans
    the statement the same way."""

    _by_sql: dict[str, _RawStatement | None] = {}
    _prepared: weakref.WeakKeyDictionary[Any, dict[str, bytes]] = weakref.WeakKeyDictionary()

    def __init__(self, query: bytes, names: tuple[str, ...]) -> None:
        self.query = query
        self.names = names

    @classmethod
    def of(cls, sql: str) -> _RawStatement | None:
        """The converted statement; None for a ``%`` other than ``%(name)s`` in it."""
        known = cls._by_sql.get(sql, cls)
        if known is not cls:
            return known  # type: ignore[return-value]
        if len(cls._by_sql) >= _CONVERTED:
            cls._by_sql.clear()  # many worlds' schemas over time: start again
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${order.setdefault(match.group(1), len(order) + 1)}"

        converted = _PLACEHOLDER.sub(number, sql)
        raw = None if "%" in converted else cls(converted.encode(), tuple(order))
        cls._by_sql[sql] = raw
        return raw

    @classmethod
    def execute(
        cls,
        connection: psycopg.Connection[Any],
        sql: str,
        params: dict[str, Any] | None,
        *,
        in_transaction: bool = False,
    ) -> Rows | None:
        """Run ``sql`` on ``connection`` (autocommit: idle, or ``in_transaction``:
        inside an open one); its rows, or None (nothing sent) when psycopg must
        send it: no parameters, parameters other than text and NULL, a ``%`` to
        interpret, a connection in another state, or not in UTF-8."""
        if not params:
            return None  # BEGIN, COMMIT, DDL: nothing worth preparing
        statement = cls.of(sql)
        pgconn = connection.pgconn
        if statement is None or pgconn.transaction_status != (
            _INTRANS if in_transaction else _IDLE_STATUS
        ):
            return None
        values = statement.values(params)
        prepared = cls._prepared_on(connection)
        if values is None or prepared is None:
            return None
        name = prepared.get(sql)
        if name is None:
            if len(prepared) >= _KEPT:
                return None
            name = _new_name()
            pgconn.send_prepare(name, statement.query)
            _check(connection, connection.wait(generators.execute(pgconn)), _COMMAND_OK)
            prepared[sql] = name
        pgconn.send_query_prepared(name, values)
        return _rows(connection, _check(connection, connection.wait(generators.execute(pgconn))))

    @classmethod
    def pipeline(
        cls, connection: psycopg.Connection[Any], batch: Sequence[Statement]
    ) -> list[Rows] | None:
        """Send ``batch`` in one round trip (libpq's pipeline mode, ending with a
        Sync, as psycopg's ``Connection.pipeline()`` does); each statement's rows, or
        None (nothing sent) unless every statement is ``BEGIN``, ``COMMIT`` or one
        ``execute`` takes. The first server error is raised, as psycopg raises it,
        once every result is in (the statements after it were skipped)."""
        pgconn = connection.pgconn
        if pgconn.transaction_status not in (_IDLE_STATUS, _INTRANS):
            return None
        prepared = cls._prepared_on(connection)
        if prepared is None:
            return None
        commands: deque[Callable[[], None]] = deque()
        preparing: dict[str, bytes] = {}  # sql -> name, prepared by this pipeline
        outputs: list[str | None] = []  # per command: the sql it prepares, or None
        for sql, params in batch:
            if not params:
                if sql not in _CONTROL:
                    return None
                commands.append(partial(pgconn.send_query_params, _CONTROL[sql], None))
                outputs.append(None)
                continue
            statement = cls.of(sql)
            values = None if statement is None else statement.values(params)
            if statement is None or values is None:
                return None
            name = prepared.get(sql) or preparing.get(sql)
            if name is None:
                if len(prepared) + len(preparing) >= _KEPT:
                    return None
                name = preparing[sql] = _new_name()
                commands.append(partial(pgconn.send_prepare, name, statement.query))
                outputs.append(sql)
            commands.append(partial(pgconn.send_query_prepared, name, values))
            outputs.append(None)
        commands.append(pgconn.pipeline_sync)
        expected = len(outputs) + 1
        pgconn.enter_pipeline_mode()
        try:
            fetched = connection.wait(generators.pipeline_communicate(pgconn, commands))
            connection.wait(generators.send(pgconn))  # every command out before reading
            while len(fetched) < expected:
                fetched.append(connection.wait(generators.fetch_many(pgconn)))
        finally:
            if pgconn.status != pq.ConnStatus.BAD:
                try:
                    pgconn.exit_pipeline_mode()
                except psycopg.OperationalError:
                    connection.close()  # results left behind: never reuse it
                    raise
        if fetched[-1][0].status != pq.ExecStatus.PIPELINE_SYNC:
            raise psycopg.InterfaceError("pipeline results out of step")
        error: psycopg.Error | None = None
        results: list[Rows] = []
        for prepares, command_results in zip(outputs, fetched, strict=False):
            try:
                result = _check(connection, command_results)
            except psycopg.Error as failed:
                error = error or failed
                continue
            if prepares is not None:
                prepared[prepares] = preparing[prepares]
            elif result.status != pq.ExecStatus.PIPELINE_ABORTED:
                results.append(_rows(connection, result))
        if error is not None:
            raise error
        if len(results) != len(batch):
            raise psycopg.errors.PipelineAborted("pipeline aborted")
        return results

    @classmethod
    def forget(cls, connection: psycopg.Connection[Any]) -> None:
        """Take nothing as prepared on ``connection`` any more."""
        cls._prepared.pop(connection, None)

    @classmethod
    def _prepared_on(cls, connection: psycopg.Connection[Any]) -> dict[str, bytes] | None:
        """The statements prepared on ``connection`` (None: not UTF-8, use psycopg)."""
        prepared = cls._prepared.get(connection)
        if prepared is None:
            if connection.pgconn.parameter_status(b"client_encoding") != b"UTF8":
                return None
            prepared = cls._prepared[connection] = {}
        return prepared

    def values(self, params: dict[str, Any]) -> list[bytes | None] | None:
        """The parameters as psycopg sends text and NULL (unknown type), in ``$n``
        order; None if any is something else (or holds a NUL, which psycopg refuses)."""
        values: list[bytes | None] = []
        for param in self.names:
            value = params[param]
            if value is None:
                values.append(None)
            elif type(value) is str and "\x00" not in value:
                values.append(value.encode())
            else:
                return None
        return values


_CONTROL = {"BEGIN": b"BEGIN", "COMMIT": b"COMMIT"}


def text_array(items: Iterable[str]) -> str:
    """``items`` as the text of a Postgres array literal (each element quoted), for
    a parameter the statement casts itself (``%(ids)s::text[]``).

    Sent as text, a list takes ``_RawStatement``'s path, where psycopg would adapt
    it through its cursor; the server's cast reads the same elements either way."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


def _new_name() -> bytes:
    return f"_wfkit_{next(_NAMES)}".encode()


def _rows(connection: psycopg.Connection[Any], result: pq.abc.PGresult) -> Rows:
    """A result's rows as dicts, typed by the connection's loaders (as a cursor types them)."""
    if result.status != _TUPLES_OK:
        return []
    columns = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
    transformer = Transformer(connection)
    transformer.set_pgresult(result)
    return transformer.load_rows(
        0, result.ntuples, lambda values: dict(zip(columns, values, strict=True))
    )


def _check(
    connection: psycopg.Connection[Any], results: list[pq.abc.PGresult], status: Any = None
) -> pq.abc.PGresult:
    """The one result of a statement; a server error raised as psycopg raises it.

    Raises:
        RetryTransaction: the statement was not prepared on the connection any more
            (psycopg ends a rollback with ``DEALLOCATE ALL`` once it has prepared
            statements of its own): nothing ran; prepared again on the next attempt.
    """
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            error = pg_errors.error_from_result(result, encoding=connection.info.encoding)
            if isinstance(error, pg_errors.InvalidSqlStatementName):
                _RawStatement.forget(connection)
                raise RetryTransaction(
                    PostgresWorldError(f"prepared statements kept disappearing: {error}")
                ) from error
            raise error
    if len(results) != 1 or (status is not None and results[0].status != status):
        raise psycopg.InterfaceError(f"unexpected results: {[r.status for r in results]}")
    return results[0]


def _attempt(engine: Engine, work: Callable[[Session], T], transactional: bool) -> T:
    pooled = _checkout(engine)
    connection = pooled.driver_connection
    if not isinstance(connection, psycopg.Connection):
        pooled.close()
        raise TypeError("PostgresWorld needs the psycopg 3 driver")
    session = Session(connection, transactional=transactional)
    try:
        try:
            with translate_errors():
                result = work(session)
        except RetryTransaction as retry:
            if retry.disconnected and session.committing:
                raise retry.final from retry.__cause__
            raise
        with translate_errors(committing=True):
            session.commit()
    except BaseException as error:
        _discard_transaction(pooled, error)
        pooled.close()
        raise
    _checkin(engine, pooled)
    return result


def _discard_transaction(pooled: Any, error: BaseException) -> None:
    """Roll back after a failure; a broken connection leaves the pool for good."""
    connection: psycopg.Connection[Any] = pooled.driver_connection
    if (
        connection.broken
        or connection.closed
        or (isinstance(error, RetryTransaction) and error.disconnected)
    ):
        pooled.invalidate()
        return
    try:
        connection.rollback()
    except psycopg.Error:
        pooled.invalidate()
    # psycopg's ROLLBACK may come with DEALLOCATE ALL (``_check``).
    _RawStatement.forget(connection)


def fetch_rows(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> Rows:
    """Run one statement on its own (autocommit, retried like a transaction); its rows.

    ``run_transaction(engine, lambda s: s.rows(sql, params), transactional=False)``
    exactly (a connection lost with the statement in flight is retried, as nothing
    is committing), without its ``Session``: a record read, a log read and a queue
    ack per run each took that detour."""
    return _retrying(lambda: _execute_alone(engine, sql, params, committing=False))


def fetch_scalar(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run one statement on its own; the first column of its first row (or None)."""
    rows = fetch_rows(engine, sql, params)
    return next(iter(rows[0].values())) if rows else None
