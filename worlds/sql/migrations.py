"""Versioned migrations of the SQL worlds' stored layout, shared by SQLite and Postgres.

A store (a SQLite file, a Postgres schema) records its layout version in the one
row of ``schema_version``. ``MIGRATIONS`` lists, in order, the steps that bring a
store from version ``N - 1`` to ``N``, each as DDL per database; the last one's
version is ``SCHEMA_VERSION`` (checked at import). Each world applies them its
own way (``wfkit.worlds.local.migrate``: every step in one ``BEGIN IMMEDIATE``
transaction behind the write gate; ``wfkit.worlds.postgres.migrate``: under the
schema's advisory lock, one transaction per step, indexes built online first),
and records every step it applied, and the creation of a new store, as one row of
``schema_history``: how many times a store was migrated is a row count, not a
guess.

``plan_migrations`` is the one judge of a stored version: nothing to do, create,
the steps to apply, or a ``SchemaVersionError`` in one line (a store newer than
this code, a version no wfkit writes, wfkit tables without a version row). Both
worlds ask it before they change anything, so a store they refuse is left as it
was.

The rules a step follows (why: workers of the previous release may still be
running against the store while it is migrated, and the store may hold millions
of runs):

- additive only: new tables, new nullable or defaulted columns, new indexes;
  never a dropped or renamed column or table, never a rewritten table. What a
  step makes redundant goes in a later step, once no release that needs it can
  be running (version 2's runs indexes lead with ``status`` and
  ``workflow_name``, so the single-column ones of version 1 are such leftovers);
- an index on an existing table is listed in ``postgresql_indexes`` so Postgres
  builds it with ``CREATE INDEX CONCURRENTLY`` (writes go on while it builds);
  SQLite has no online index build: its step holds the write lock while it runs;
- the DDL is written out literally, not derived from ``schema.py``: a step must
  keep meaning what it meant when it shipped, whatever later versions declare.
  ``tests/worlds/test_migrations.py`` holds a migrated store equal to a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, insert

from wfkit.worlds.base import SchemaVersionError
from wfkit.worlds.sql.schema import LAYOUT, SCHEMA_VERSION, Tables

__all__ = [
    "CREATED_SUMMARY",
    "LAYOUT_TABLES",
    "MIGRATIONS",
    "Migration",
    "OnlineIndex",
    "Plan",
    "history_row",
    "plan_migrations",
]

CREATED_SUMMARY = "created"
"""The ``schema_history`` summary of a store made new at ``SCHEMA_VERSION``."""


@dataclass(frozen=True)
class OnlineIndex:
    """An index Postgres builds with ``CREATE INDEX CONCURRENTLY`` before its step's
    transaction: ``columns`` is the parenthesized key list, as in ``CREATE INDEX``."""

    name: str
    table: str
    columns: str
    unique: bool = False
    where: str | None = None
    """A partial index's predicate (None: every row)."""

    def create_sql(self, schema: str) -> str:
        """The ``CREATE INDEX CONCURRENTLY`` statement inside ``schema`` (quoted)."""
        unique = "UNIQUE " if self.unique else ""
        where = "" if self.where is None else f" WHERE {self.where}"
        return (
            f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {self.name}"
            f" ON {schema}.{self.table} ({self.columns}){where}"
        )


@dataclass(frozen=True)
class Migration:
    """One step: brings a store from ``version - 1`` to ``version``.

    Attributes:
        version: the version the store has after this step.
        summary: one line saying what the step adds (recorded in ``schema_history``).
        sqlite: statements run in order inside the step's SQLite transaction.
        postgresql: statements run in order inside the step's Postgres transaction;
            ``{schema}`` stands for the quoted schema name.
        postgresql_indexes: indexes on existing tables, built online before the
            transaction (and re-built when an interrupted build left them invalid).
        postgresql_columns: statements run one by one before the online indexes,
            outside the transaction: the nullable columns those indexes cover
            (``ADD COLUMN IF NOT EXISTS``: instant, and harmless to run again after
            an interrupted step).
    """

    version: int
    summary: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    postgresql_indexes: tuple[OnlineIndex, ...] = field(default=())
    postgresql_columns: tuple[str, ...] = field(default=())

    def postgresql_sql(self, schema: str) -> list[str]:
        """The transactional Postgres statements with ``{schema}`` replaced by
        ``schema`` (quoted; a plain replace, so braces elsewhere in DDL stay)."""
        return [statement.replace("{schema}", schema) for statement in self.postgresql]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=2,
        summary="schema_history; runs indexed for newest-first lists by status, workflow "
        "and deployment",
        sqlite=(
            "CREATE TABLE schema_history (seq INTEGER NOT NULL, version INTEGER NOT NULL,"
            " summary TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (seq))",
            "CREATE INDEX runs_by_status_id ON runs (status, run_id)",
            "CREATE INDEX runs_by_workflow_id ON runs (workflow_name, run_id)",
            "CREATE INDEX runs_by_deployment ON runs (deployment_id, status, run_id)",
        ),
        postgresql=(
            "CREATE TABLE {schema}.schema_history (seq BIGINT GENERATED BY DEFAULT AS IDENTITY,"
            " version INTEGER NOT NULL, summary TEXT NOT NULL,"
            " applied_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (seq))",
        ),
        postgresql_indexes=(
            OnlineIndex("runs_status_run_id", "runs", "status, run_id"),
            OnlineIndex("runs_workflow_name_run_id", "runs", "workflow_name, run_id"),
            OnlineIndex("runs_deployment_status_run_id", "runs", "deployment_id, status, run_id"),
        ),
    ),
    Migration(
        version=3,
        summary="flow control: runs carry an idempotency key, a deadline, a named queue "
        "(key, priority, admitting worker); schedules",
        sqlite=(
            "ALTER TABLE runs ADD COLUMN idempotency_key TEXT",
            "ALTER TABLE runs ADD COLUMN deadline_at TEXT",
            "ALTER TABLE runs ADD COLUMN queue_name TEXT",
            "ALTER TABLE runs ADD COLUMN queue_key TEXT",
            "ALTER TABLE runs ADD COLUMN queue_priority INTEGER",
            "ALTER TABLE runs ADD COLUMN admitted_by TEXT",
            "CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (idempotency_key)"
            " WHERE idempotency_key IS NOT NULL",
            "CREATE INDEX runs_by_queue ON runs (queue_name, status, queue_priority, run_id)"
            " WHERE queue_name IS NOT NULL",
            "CREATE INDEX runs_by_queue_start ON runs (queue_name, started_at)"
            " WHERE queue_name IS NOT NULL",
            "CREATE TABLE schedules (schedule_id TEXT NOT NULL, workflow_name TEXT NOT NULL,"
            " cron TEXT NOT NULL, input TEXT NOT NULL, missed TEXT NOT NULL,"
            " status TEXT NOT NULL, last_tick_at TEXT, created_at TEXT NOT NULL,"
            " updated_at TEXT NOT NULL, PRIMARY KEY (schedule_id))",
        ),
        postgresql_columns=(
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS idempotency_key TEXT",
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS deadline_at"
            " TIMESTAMP WITH TIME ZONE",
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS queue_name TEXT",
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS queue_key TEXT",
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS queue_priority INTEGER",
            "ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS admitted_by TEXT",
        ),
        postgresql=(
            "CREATE TABLE {schema}.schedules (schedule_id TEXT NOT NULL,"
            " workflow_name TEXT NOT NULL, cron TEXT NOT NULL, input TEXT, missed TEXT NOT NULL,"
            " status TEXT NOT NULL, last_tick_at TIMESTAMP WITH TIME ZONE,"
            " created_at TIMESTAMP WITH TIME ZONE NOT NULL,"
            " updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (schedule_id))",
        ),
        postgresql_indexes=(
            OnlineIndex(
                "runs_idempotency_key_uq",
                "runs",
                "idempotency_key",
                unique=True,
                where="idempotency_key IS NOT NULL",
            ),
            OnlineIndex(
                "runs_queue_status",
                "runs",
                "queue_name, status, queue_priority, run_id",
                where="queue_name IS NOT NULL",
            ),
            OnlineIndex(
                "runs_queue_started",
                "runs",
                "queue_name, started_at",
                where="queue_name IS NOT NULL",
            ),
        ),
    ),
)
"""Every step after version 1 (the layout wfkit 0.1.0 created), in order."""


def _check_steps() -> None:
    versions = [step.version for step in MIGRATIONS]
    if versions != list(range(2, SCHEMA_VERSION + 1)):
        raise RuntimeError(
            f"wfkit.worlds.sql.migrations lists versions {versions}, but SCHEMA_VERSION is "
            f"{SCHEMA_VERSION}: each version from 2 up needs exactly one step"
        )


_check_steps()


@dataclass(frozen=True)
class Plan:
    """What opening a store takes: create it (``create``), apply ``steps`` (in
    order), or nothing (neither)."""

    found: int | None
    create: bool
    steps: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        """Nothing to create or migrate."""
        return not self.create and not self.steps


def plan_migrations(found: object, *, has_tables: bool, store: str) -> Plan:
    """Judge a store's stored version and say what opening it takes.

    Args:
        found: the ``version`` of the ``schema_version`` row (id 1), or None when
            there is no such table or row.
        has_tables: whether the store holds any of the layout's tables (the version
            table included).
        store: how messages name the store (a file path, ``Postgres schema 'x'``).

    Returns:
        The plan; its ``steps`` are empty for an up-to-date store.

    Raises:
        SchemaVersionError: the version is newer than this code, is not a version
            any wfkit writes (not an integer, below 1), or is missing from a store
            that holds wfkit tables. The message is one line.
    """
    if found is None:
        if has_tables:
            raise SchemaVersionError(
                f"{store} holds wfkit tables but no schema version row: it is damaged or "
                "was not written by wfkit; restore it from a backup or use another database"
            )
        return Plan(found=None, create=True, steps=())
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise SchemaVersionError(
            f"{store} records schema version {found!r}, which no wfkit writes (versions "
            f"start at 1): it is damaged; restore it from a backup or use another database"
        )
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{store} uses schema version {found}, but this wfkit understands up to "
            f"version {SCHEMA_VERSION}: upgrade wfkit, or use another database"
        )
    return Plan(found=found, create=False, steps=MIGRATIONS[found - 1 :])


def history_row(tables: Tables, version: int, summary: str, applied_at: Any) -> Insert:
    """The INSERT of one ``schema_history`` row.

    Args:
        tables: the world's tables.
        version: the version the store reached.
        summary: ``CREATED_SUMMARY`` or the step's summary.
        applied_at: the time as the database stores it (ISO text in SQLite, a SQL
            expression such as ``now()`` in Postgres).
    """
    return insert(tables.schema_history).values(
        version=version, summary=summary, applied_at=applied_at
    )


LAYOUT_TABLES = frozenset(LAYOUT)
"""The names of the layout's tables: a store holding any of them is not empty."""
