"""What a SQL world's store looks like, read back from the database's own catalog.

``*_layout`` is the text ``snapshots/worlds/*.sql`` holds (a new store's DDL, in
the order the database lists it). ``*_structure`` is the same catalog as data
with the order that does not matter taken out (column order, SQLite's
whitespace in stored DDL, the names SQLite gives the indexes of UNIQUE
constraints): two stores with equal structures have the same tables, columns,
types, defaults, keys, constraints, indexes, triggers and functions.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg


def sqlite_layout(path: Path) -> str:
    """Every table and index of the file as its stored DDL."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%' ORDER BY type DESC, name"
        ).fetchall()
    finally:
        connection.close()
    return "".join(f"-- {kind} {name}\n{sql};\n\n" for kind, name, sql in rows)


def _where(sql: str | None) -> str | None:
    """The WHERE clause of a partial index's DDL, whitespace collapsed."""
    if sql is None or " WHERE " not in sql:
        return None
    return " ".join(sql.split(" WHERE ", 1)[1].split())


def sqlite_structure(path: Path) -> dict[str, Any]:
    """Tables -> columns (by name) and indexes, from SQLite's PRAGMAs."""
    connection = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        stored_sql = dict(
            connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        )
        structure: dict[str, Any] = {}
        for table in tables:
            columns = {
                name: (kind, bool(notnull), default, key)
                for _, name, kind, notnull, default, key in connection.execute(
                    f"PRAGMA table_info({table})"
                )
            }
            named: dict[str, Any] = {}
            automatic: list[Any] = []
            for _, name, unique, origin, partial in connection.execute(
                f"PRAGMA index_list({table})"
            ):
                keys = [row[2] for row in connection.execute(f"PRAGMA index_info({name})")]
                entry = (tuple(keys), bool(unique), origin, bool(partial))
                if name.startswith("sqlite_autoindex_"):
                    automatic.append(entry)
                else:
                    named[name] = (*entry, _where(stored_sql.get(name)))
            structure[table] = {
                "columns": columns,
                "indexes": named,
                "constraint_indexes": sorted(automatic),
            }
        return structure
    finally:
        connection.close()


_CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default,
        is_identity FROM information_schema.columns WHERE table_schema = %(s)s
        ORDER BY table_name, ordinal_position""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = %(s)s::regnamespace ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = %(s)s ORDER BY 1, 2""",
    "triggers": """SELECT event_object_table, trigger_name, event_manipulation,
        action_timing, action_orientation, action_statement
        FROM information_schema.triggers WHERE trigger_schema = %(s)s ORDER BY 1, 2, 3""",
    "functions": """SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = %(s)s::regnamespace ORDER BY 1""",
}


def _neutral(text: str, schema: str) -> str:
    """Names made schema-neutral: the schema and the NOTIFY channels derived from it."""
    text = re.sub(r"wfkit_([qs])_[0-9a-f]{24}", r"wfkit_\1_<digest>", text)
    return re.sub(rf"\b{re.escape(schema)}\b", "<schema>", text)


def postgres_layout(url: str, schema: str) -> str:
    """The schema as the server's catalog describes it (names made schema-neutral)."""
    lines: list[str] = []
    with psycopg.connect(url) as connection:
        for section, query in _CATALOG.items():
            lines.append(f"-- {section}")
            for row in connection.execute(query, {"s": schema}):
                lines.append(" | ".join(str(value) for value in row))
            lines.append("")
    return _neutral("\n".join(lines), schema)


def postgres_structure(url: str, schema: str) -> dict[str, Any]:
    """The catalog sections as sets of rows (column order left out), schema-neutral."""
    structure: dict[str, Any] = {}
    with psycopg.connect(url) as connection:
        for section, query in _CATALOG.items():
            rows = connection.execute(query, {"s": schema}).fetchall()
            structure[section] = sorted(
                tuple(_neutral(str(value), schema) for value in row) for row in rows
            )
    return structure
