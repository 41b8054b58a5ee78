"""Database errors, translated once.

Every statement the Postgres world sends runs inside ``translate_errors()``
(through ``session.run_transaction``), the one place where driver exceptions
become ``wfkit.worlds.base`` errors, the way httpx's ``map_httpcore_exceptions`` does:

* sqlstate 23505 (unique_violation) → ``EntityConflictError``, except a clash on
  the active-hook token index, which retries the transaction (the retry sees the
  other run's hook and writes ``hook_conflict``, as a serial execution would);
* 40001 / 40P01 (serialization failure, deadlock) → retry the transaction;
* a dropped connection before COMMIT → retry (the pool reconnects); while
  COMMIT is in flight the outcome is unknown, so it surfaces as
  ``DatabaseUnavailableError`` instead;
* 57014 (query_canceled, e.g. ``statement_timeout``) → ``StatementTimeoutError``.

Both raw psycopg errors (the hot path talks to the driver directly) and
SQLAlchemy's wrappers of them (schema management) are handled.

Error tree (additions to ``wfkit.worlds.base``)::

    WorldError
    └── PostgresWorldError
        ├── DatabaseUnavailableError   the server cannot be reached (after retries; also a
        │                              WorldUnavailableError)
        └── StatementTimeoutError      a statement ran longer than statement_timeout
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import exc as sa_exc

from wfkit.worlds.base import EntityConflictError, WorldError, WorldUnavailableError

__all__ = [
    "HOOK_TOKEN_INDEX",
    "DatabaseUnavailableError",
    "PostgresWorldError",
    "RetryTransaction",
    "StatementTimeoutError",
    "translate_errors",
]

HOOK_TOKEN_INDEX = "hooks_active_token_uq"
"""Name of the partial unique index on ``hooks(token) WHERE status = 'active'``."""

_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


class PostgresWorldError(WorldError):
    """A failure of the Postgres world that is not a lifecycle refusal."""


class DatabaseUnavailableError(PostgresWorldError, WorldUnavailableError):
    """The server could not be reached, or the connection dropped during COMMIT."""


class StatementTimeoutError(PostgresWorldError):
    """A statement exceeded the world's ``statement_timeout_ms`` and was cancelled."""


_UNREACHABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "08001", "08004", "08006"})
"""Connection failures that end when the server is up (shutting down, starting up,
cannot connect)."""
_PASSING_REFUSALS = (
    "starting up",
    "shutting down",
    "not yet accepting",
    "recovery",
    "too many clients",
    "connection slots",
)
"""What a server says when it refuses a connection only for now (libpq gives no sqlstate
for a refused connection: its words are all there is)."""


def connect_failure(error: sa_exc.OperationalError, where: str) -> PostgresWorldError:
    """The one-line error for a failure to open a connection to ``where``.

    Returns:
        ``DatabaseUnavailableError`` when no server answered, or one answered that it is
        starting up, shutting down or full (worth trying again); else
        ``PostgresWorldError`` (a bad role or password, no such database).
    """
    driver = _driver_error(error)
    text = str(driver or error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    state = driver.sqlstate if driver is not None else None
    server_refused = "FATAL:" in text and not any(word in text for word in _PASSING_REFUSALS)
    if state in _UNREACHABLE_SQLSTATES or (state is None and not server_refused):
        return DatabaseUnavailableError(f"cannot reach Postgres at {where}: {detail}")
    return PostgresWorldError(f"Postgres at {where} refused the connection: {detail}")


class RetryTransaction(Exception):
    """Internal: the transaction may be run again from the start.

    ``final`` is what to raise when the retries run out; ``disconnected`` says the
    connection is dead and must not go back to the pool."""

    def __init__(self, final: WorldError, *, disconnected: bool = False) -> None:
        super().__init__(str(final))
        self.final = final
        self.disconnected = disconnected


def _driver_error(error: BaseException) -> psycopg.Error | None:
    if isinstance(error, psycopg.Error):
        return error
    if isinstance(error, sa_exc.DBAPIError) and isinstance(error.orig, psycopg.Error):
        return error.orig
    return None


@contextmanager
def translate_errors(*, committing: bool = False) -> Iterator[None]:
    """Map driver exceptions raised in the block to ``wfkit.worlds.base`` errors.

    Args:
        committing: the block sends COMMIT, so a dropped connection leaves the
            outcome unknown and must not be retried.

    Raises:
        EntityConflictError: a unique violation (a duplicate creation).
        StatementTimeoutError: the statement timeout cancelled a statement.
        DatabaseUnavailableError: the connection dropped during COMMIT.
        RetryTransaction: (internal) caught by ``session.run_transaction``.
    """
    try:
        yield
    except (psycopg.Error, sa_exc.DBAPIError) as error:
        driver = _driver_error(error)
        state = driver.sqlstate if driver is not None else None
        detail = str(driver or error).strip()
        if state == "23505":
            conflict = EntityConflictError(f"duplicate: {detail}")
            constraint = driver.diag.constraint_name if driver is not None else None
            if constraint == HOOK_TOKEN_INDEX:
                raise RetryTransaction(conflict) from error
            raise conflict from error
        if state in _RETRY_SQLSTATES:
            raise RetryTransaction(
                PostgresWorldError(f"transaction kept failing to serialize: {detail}")
            ) from error
        if state == "57014":
            raise StatementTimeoutError(f"statement cancelled: {detail}") from error
        if isinstance(driver, psycopg.OperationalError) or isinstance(
            error, sa_exc.OperationalError
        ):
            unavailable = DatabaseUnavailableError(f"Postgres unavailable: {detail}")
            if committing:
                raise unavailable from error
            raise RetryTransaction(unavailable, disconnected=True) from error
        raise
