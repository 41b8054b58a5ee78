"""The lookups that must not grow with the store are served by an index, on both SQL
databases, for any parameter values.

A user notices these as time, not as results: the inspector's runs list filtered by
status polls every second, and every hook creation and ``resume_hook`` looks a token
up among all hooks ever created. On a store of 300,000 runs, listing the newest 100
``completed`` runs without the (status, run_id) index sorted all of them (~0.4 s per
query in SQLite, ~0.2 ms with it). The token lookup gets its ``'active'`` as a
constant: with a parameter there, a plan made without parameter values (Postgres'
generic plan of a prepared statement) cannot use the partial index on active tokens,
so every execution had to be planned again for its values. The plans are read from
each database's EXPLAIN; Postgres's with sequential scans and sorts priced out and
the generic plan forced.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql
from sqlalchemy import Select

from tests.conftest import postgres_url
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.local.db import PreparedSql
from wfkit.worlds.local.sql import STATEMENTS
from wfkit.worlds.postgres import PostgresWorld
from wfkit.worlds.postgres.sql import compile_statement
from wfkit.worlds.sql import RecordStatements

URL = postgres_url()


def _lookups(statements: RecordStatements) -> dict[str, tuple[Select[Any], dict[str, Any]]]:
    """The statements under test, with parameters, by what a user does with them; the
    first parameter is the column the index must be searched by."""
    return {
        "runs by status": (
            statements.runs(by_status=True, by_workflow=False),
            {"status": "completed", "limit": 100},
        ),
        "runs by workflow": (
            statements.runs(by_status=False, by_workflow=True),
            {"workflow_name": "wf", "limit": 100},
        ),
        "active hook by token": (statements.active_hook_by_token, {"token": "t"}),
    }


@pytest.mark.parametrize("lookup", list(_lookups(STATEMENTS)))
def test_sqlite_serves_the_lookup_from_an_index_without_sorting(
    tmp_path: Path, lookup: str
) -> None:
    LocalWorld(tmp_path / "w.db").close()
    statement, values = _lookups(STATEMENTS)[lookup]
    prepared = PreparedSql(statement)
    connection = sqlite3.connect(tmp_path / "w.db")
    try:
        plan = [
            row[-1]
            for row in connection.execute(
                f"EXPLAIN QUERY PLAN {prepared.sql}", prepared.args(values)
            )
        ]
    finally:
        connection.close()
    assert len(plan) == 1 and plan[0].startswith("SEARCH") and "USING INDEX" in plan[0], plan


@pytest.fixture(scope="module")
def postgres_world() -> Iterator[PostgresWorld]:
    assert URL
    world = PostgresWorld(URL, schema="wfkit_plans")
    try:
        yield world
    finally:
        world.drop_schema()
        world.close()


@pytest.mark.postgres
@pytest.mark.skipif(not URL, reason="WFKIT_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("lookup", list(_lookups(STATEMENTS)))
def test_postgres_serves_the_lookup_from_an_index_without_sorting(
    postgres_world: PostgresWorld, lookup: str
) -> None:
    assert URL
    statement, values = _lookups(RecordStatements.build(postgres_world.tables))[lookup]
    compiled = compile_statement(statement)
    with psycopg.connect(URL) as connection:
        # With sequential scans and sorts priced out, the planner still picks one when
        # no index can serve the query; and a generic plan (what a prepared statement
        # reused many times gets) knows no parameter values.
        connection.execute("SET enable_seqscan = off")
        connection.execute("SET enable_sort = off")
        connection.execute("SET plan_cache_mode = force_generic_plan")
        connection.execute(f"PREPARE lookup AS {_numbered(compiled.sql, compiled.params(values))}")
        plan = "\n".join(
            row[0]
            for row in connection.execute("EXPLAIN EXECUTE lookup" + _args(compiled.params(values)))
        )
    searched_by = next(iter(values))
    assert f"Index Cond: ({searched_by} = $" in plan, plan
    assert "Filter" not in plan and "Sort" not in plan and "Seq Scan" not in plan, plan


def _numbered(sql: str, params: dict[str, Any]) -> str:
    """``%(name)s`` parameters as ``$1, $2 …`` (PREPARE's form), in ``params`` order."""
    for number, name in enumerate(params, start=1):
        sql = sql.replace(f"%({name})s", f"${number}")
    return sql


def _args(params: dict[str, Any]) -> str:
    return "(" + ", ".join(pgsql.quote(value) for value in params.values()) + ")"
