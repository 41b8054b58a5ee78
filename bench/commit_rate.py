"""The raw commit rate of a database: the ceiling a durable step rate is read against.

    .venv/bin/python -m bench.commit_rate [--worlds local,postgres] [--commits 2000]

N single-row ``INSERT`` + ``COMMIT`` transactions into a scratch table, from one
connection and from two connections at once (threads, N/2 each), configured as
the world configures its own connections: SQLite in WAL mode with
``synchronous=NORMAL`` and ``BEGIN IMMEDIATE``; Postgres with the server's
default (durable) ``synchronous_commit``, each transaction one pipelined round
trip. A sequential step costs one commit at best, so steps/s over this rate is
the fraction of the database's limit a workflow engine reaches.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["measure_commit_rate", "postgres_commit_rate", "sqlite_commit_rate"]

_PAYLOAD = "x" * 200  # about the size of a step event row


def measure_commit_rate(
    open_connection: Callable[[], Any], insert: Callable[[Any, int], None], commits: int
) -> dict[str, float]:
    """Commits per second from one connection and from two at once.

    Args:
        open_connection: opens a connection ready for ``insert``.
        insert: runs one single-row insert transaction, committed, on a connection.
        commits: transactions in each of the two measurements.

    Returns:
        ``{"one": commits/s with one connection, "two": commits/s with two}``.
    """
    rates: dict[str, float] = {}
    for label, connections in (("one", 1), ("two", 2)):
        handles = [open_connection() for _ in range(connections)]
        share = commits // connections
        barrier = threading.Barrier(connections + 1)

        threads = [
            threading.Thread(target=_insert_rows, args=(insert, handle, k * share, share, barrier))
            for k, handle in enumerate(handles)
        ]
        for thread in threads:
            thread.start()
        barrier.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        rates[label] = share * connections / (time.perf_counter() - began)
        for handle in handles:
            handle.close()
    return rates


def _insert_rows(
    insert: Callable[[Any, int], None],
    connection: Any,
    offset: int,
    count: int,
    barrier: threading.Barrier,
) -> None:
    barrier.wait()
    for i in range(count):
        insert(connection, offset + i)


def sqlite_commit_rate(path: Path, commits: int) -> dict[str, float]:
    """``measure_commit_rate`` on a fresh SQLite file configured like the local world."""

    def open_connection() -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS commit_rate (id INTEGER PRIMARY KEY, payload TEXT)"
        )
        connection.execute("DELETE FROM commit_rate")
        return connection

    def insert(connection: sqlite3.Connection, row_id: int) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO commit_rate VALUES (?, ?)", (row_id, _PAYLOAD))
        connection.execute("COMMIT")

    return measure_commit_rate(open_connection, insert, commits)


def postgres_commit_rate(url: str, commits: int) -> dict[str, float]:
    """``measure_commit_rate`` on a scratch table in a scratch schema of ``url``."""
    import psycopg

    schema = f"bench_commit_{uuid.uuid4().hex[:10]}"
    conninfo = url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.commit_rate (id bigint PRIMARY KEY, payload text)")
    try:

        def open_connection() -> psycopg.Connection[Any]:
            connection = psycopg.connect(conninfo, autocommit=True)
            connection.execute(f"TRUNCATE {schema}.commit_rate")
            return connection

        def insert(connection: psycopg.Connection[Any], row_id: int) -> None:
            with connection.pipeline():
                connection.execute("BEGIN")
                connection.execute(
                    f"INSERT INTO {schema}.commit_rate VALUES (%s, %s)", (row_id, _PAYLOAD)
                )
                connection.execute("COMMIT")

        return measure_commit_rate(open_connection, insert, commits)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def main(argv: list[str] | None = None) -> None:
    """Print the commit rates of the chosen databases."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="local,postgres")
    parser.add_argument("--commits", type=int, default=2000)
    args = parser.parse_args(argv)
    url = os.environ.get("WFKIT_BENCH_POSTGRES_URL") or os.environ.get("WFKIT_TEST_POSTGRES_URL")
    print(f"{'database':<9} {'1 conn commits/s':>17} {'2 conns commits/s':>18}")
    for kind in args.worlds.split(","):
        if kind == "local":
            with tempfile.TemporaryDirectory() as tmp:
                rates = sqlite_commit_rate(Path(tmp) / "commit-rate.db", args.commits)
        elif kind == "postgres" and url:
            rates = postgres_commit_rate(url, args.commits)
        else:
            continue
        print(f"{kind:<9} {rates['one']:>17.0f} {rates['two']:>18.0f}")


if __name__ == "__main__":
    main()
