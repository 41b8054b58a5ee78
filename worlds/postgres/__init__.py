"""The Postgres world: any number of workers on any number of machines.

SQLAlchemy (engine, ``QueuePool``, schema DDL) over psycopg 3
(hand-written SQL on the hot path). Every event batch is one short transaction
that locks its run's row, checks the transitions with the lifecycle rules shared
by every world (``wfkit.worlds.base.plan_events``) and writes the events, the records
and any queue messages in one statement: two round trips, and no ping (a pooled
connection found dead is replaced and the transaction retried, ``session``).
The queue leases with ``FOR UPDATE SKIP LOCKED``; LISTEN/NOTIFY wakes idle
receivers and stream readers. The world creates and upgrades its own tables.

The tables, the row ⇄ record codecs and the record reads are the shared SQL
layer's (``wfkit.worlds.sql``). Modules: ``migrate`` (creating and upgrading
the schema under an advisory lock, NOTIFY triggers), ``errors`` (the one place
driver errors are translated), ``session`` (pipelined statements, the retrying
transaction runner), ``events`` + ``writes`` (the event log), ``queue``,
``streams``, ``notify`` (the LISTEN thread), ``sql`` (names, compiled statements).
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from sqlalchemy import Delete, Insert, Select, Update, create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from wfkit.worlds.base import Events, Hooks, Queue, Runs, Schedules, Steps, Streams, Waits
from wfkit.worlds.postgres.errors import (
    DatabaseUnavailableError,
    PostgresWorldError,
    StatementTimeoutError,
    connect_failure,
)
from wfkit.worlds.postgres.events import PostgresEvents
from wfkit.worlds.postgres.loader import LoaderSql
from wfkit.worlds.postgres.migrate import drop_schema, ensure_schema
from wfkit.worlds.postgres.notify import Listener
from wfkit.worlds.postgres.queue import PostgresQueue
from wfkit.worlds.postgres.session import (
    abandon_idle_connections,
    fetch_rows,
    keep_idle_connections,
    release_idle_connections,
)
from wfkit.worlds.postgres.sql import CODECS, TableNames, compile_statement
from wfkit.worlds.postgres.streams import PostgresStreams
from wfkit.worlds.sql import (
    SCHEMA_VERSION,
    Query,
    RecordStatements,
    SqlHooks,
    SqlRuns,
    SqlSchedules,
    SqlSteps,
    SqlWaits,
    build_tables,
)

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseUnavailableError",
    "PostgresWorld",
    "PostgresWorldError",
    "StatementTimeoutError",
    "normalize_url",
]

_DRIVER = "postgresql+psycopg"
_ACCEPTED_DRIVERS = frozenset({"postgres", "postgresql", _DRIVER})


def normalize_url(url: str | URL) -> URL:
    """Parse a Postgres URL and pin the psycopg 3 driver.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``.

    Raises:
        ValueError: the URL names another database or driver.
    """
    parsed = make_url(url)
    if parsed.drivername not in _ACCEPTED_DRIVERS:
        raise ValueError(
            f"PostgresWorld needs a postgresql:// URL (psycopg 3), got {parsed.drivername}://"
        )
    return parsed.set(drivername=_DRIVER)


def _register_fork_safety(world: PostgresWorld) -> None:
    """In a forked child, drop the parent's pooled sockets (without closing them
    under the parent) and its listener thread; both are rebuilt on first use."""
    ref = weakref.ref(world)

    def after_fork_in_child() -> None:
        target = ref()
        if target is not None:
            abandon_idle_connections(target.engine)
            target.engine.dispose(close=False)
            target.listener.after_fork()

    os.register_at_fork(after_in_child=after_fork_in_child)


class PostgresWorld:
    """A World in a Postgres database (``WFKIT_WORLD=postgresql://…``).

    Args:
        url: ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` URL;
            a ``?schema=NAME`` query parameter chooses the schema (so a
            ``WFKIT_WORLD`` URL can name it) and is not passed to the driver.
        schema: the Postgres schema holding the tables, created if missing
            (default: the URL's ``schema`` parameter, else ``wfkit``).
        pool_size: connections kept open in the pool.
        max_overflow: extra connections allowed under load.
        statement_timeout_ms: per-statement limit set on every connection, so a
            stuck query cannot stall a worker forever (0 disables it).
        pool_pre_ping: test pooled connections before use. Off by default: it
            costs a round trip per transaction, and a dead pooled connection
            (say, after a server restart) fails the transaction's first
            round trip, before COMMIT, which ``session.run_transaction``
            already answers by discarding the connection and retrying.
        synchronous_commit: wait for the WAL flush at each COMMIT (the default).
            False sets ``synchronous_commit=off`` for the world's sessions: a
            server crash may lose the last few hundred milliseconds of commits
            (never consistency), and a commit no longer costs a disk flush.

    Raises:
        SchemaVersionError: the schema was written by a newer wfkit.
        DatabaseUnavailableError: the server cannot be reached (down, starting up);
            a ``WorldUnavailableError``, so callers may try again later.
        PostgresWorldError: the server refused the connection (credentials, database).
        ValueError: the URL is not a Postgres URL.
    """

    name = "postgres"

    def __init__(
        self,
        url: str | URL,
        *,
        schema: str | None = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        statement_timeout_ms: int = 30_000,
        pool_pre_ping: bool = False,
        synchronous_commit: bool = True,
    ) -> None:
        parsed = normalize_url(url)
        url_schema = parsed.query.get("schema")
        if isinstance(url_schema, tuple):
            url_schema = url_schema[-1]
        self.url = parsed.difference_update_query(["schema"])
        schema = schema or url_schema or "wfkit"
        self.schema = schema
        options = f"-c statement_timeout={int(statement_timeout_ms)} -c timezone=UTC"
        if not synchronous_commit:
            options += " -c synchronous_commit=off"
        connect_args: dict[str, Any] = {
            "options": options,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "connect_timeout": 10,
        }
        self.engine: Engine = create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=pool_pre_ping,
            isolation_level="AUTOCOMMIT",
            connect_args=connect_args,
        )
        try:
            self.tables = build_tables("postgresql", schema)
            ensure_schema(self.engine, self.tables)
        except sa_exc.OperationalError as error:
            self.engine.dispose()
            where = self.url.render_as_string(hide_password=True)
            raise connect_failure(error, where) from None
        except BaseException:
            self.engine.dispose()
            raise
        # Not with pre-ping (a connection kept at hand would skip its ping), nor
        # with an unbounded pool (pool_size 0: nothing to bound the connections by).
        if not pool_pre_ping and pool_size > 0:
            keep_idle_connections(self.engine, pool_size)
        names = TableNames.for_schema(schema)
        self.names = names
        _, listen_params = self.engine.dialect.create_connect_args(self.url)
        listen_kwargs = {**listen_params, **connect_args}
        listen_kwargs["options"] = "-c timezone=UTC"
        self.listener = Listener(
            listen_kwargs, queue_channel=names.queue_channel, stream_channel=names.stream_channel
        )
        statements = RecordStatements.build(self.tables)
        self.events: Events = PostgresEvents(self.engine, names, LoaderSql.build(statements))
        self.runs: Runs = SqlRuns(statements, CODECS.run, self._prepare)
        self.steps: Steps = SqlSteps(statements, CODECS.step, self._prepare)
        self.hooks: Hooks = SqlHooks(statements, CODECS.hook, self._prepare)
        self.waits: Waits = SqlWaits(statements, CODECS.wait, self._prepare)
        self.queue: Queue = PostgresQueue(self.engine, names, self.listener)
        self.streams: Streams = PostgresStreams(self.engine, names, self.listener)
        self.schedules: Schedules = SqlSchedules(
            self.tables, CODECS.schedule, self._prepare, self._prepare
        )
        _register_fork_safety(self)

    def _prepare(self, statement: Select[Any] | Insert | Update | Delete) -> Query:
        """One statement on a pooled connection (autocommit), retried like any other:
        a record read, or a schedule's write on its own."""
        compiled = compile_statement(statement)
        engine = self.engine

        def query(**values: Any) -> list[dict[str, Any]]:
            return fetch_rows(engine, compiled.sql, compiled.params(values))

        return query

    def __repr__(self) -> str:
        return f"PostgresWorld({self.url.render_as_string(hide_password=True)!r}, schema={self.schema!r})"

    def reset(self) -> None:
        """Delete every row of every table of this world's schema (tests)."""
        fetch_rows(self.engine, f"TRUNCATE {', '.join(self.names.all_tables())} RESTART IDENTITY")

    def drop_schema(self) -> None:
        """Drop this world's whole Postgres schema (tests); the world is unusable after."""
        drop_schema(self.engine, self.schema)

    def close(self) -> None:
        """Stop the LISTEN thread and close every pooled connection."""
        self.listener.close()
        release_idle_connections(self.engine)
        self.engine.dispose()
