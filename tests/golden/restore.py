"""Putting the recorded 0.1.0 databases (``databases/``) where a test can open them."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy

DATABASES = Path(__file__).resolve().parent / "databases"
LOCAL_0_1 = DATABASES / "local-0.1.db"
POSTGRES_0_1 = DATABASES / "postgres-0.1.sql"
POSTGRES_0_1_SCHEMA = "wfkit"
"""The Postgres schema the 0.1.0 dump creates."""

IN_FLIGHT_TOKEN = "golden-approve:o-inflight"
"""The hook the 0.1.0 databases' running run waits on."""


def copy_local_0_1(path: Path) -> Path:
    """A copy of the 0.1.0 SQLite file at ``path`` (the recording is never opened)."""
    shutil.copyfile(LOCAL_0_1, path)
    return path


def load_pg_dump(url: str, dump: str) -> None:
    """Run a plain ``pg_dump`` script: SQL between its ``COPY … FROM stdin`` blocks
    as scripts, each block's rows through the COPY protocol; psql's own
    backslash commands (``\\restrict``) are skipped."""
    with psycopg.connect(url, autocommit=True) as connection:
        script: list[str] = []

        def flush() -> None:
            if any(line.strip() and not line.startswith("--") for line in script):
                connection.execute("\n".join(script).encode())
            script.clear()

        lines = iter(dump.splitlines())
        for line in lines:
            if line.startswith("COPY ") and line.endswith("FROM stdin;"):
                flush()
                with connection.cursor().copy(line.removesuffix(";").encode()) as copy:
                    for row in lines:
                        if row == "\\.":
                            break
                        copy.write(row + "\n")
            elif not line.startswith("\\"):
                script.append(line)
        flush()


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url`` (dropped afterwards);
    yields its URL."""
    server = sqlalchemy.make_url(server_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        # template0 takes no connections, so a session someone holds on template1
        # cannot make the copy fail ("source database is being accessed by other users").
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0'.encode())
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextmanager
def postgres_0_1(server_url: str) -> Iterator[str]:
    """A scratch database holding the 0.1.0 dump (schema ``wfkit``); yields its URL."""
    with scratch_database(server_url, "wfkit_golden") as url:
        load_pg_dump(url, POSTGRES_0_1.read_text())
        yield url
