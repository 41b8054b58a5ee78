"""``world.runs``, ``world.steps``, ``world.hooks``, ``world.waits``: read-only views.

Records change only through ``world.events``; these classes read the
materialized rows (one short read transaction each, retried on a dropped
connection like every other statement of the world).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from wfkit.worlds.base import (
    Hook,
    HookNotFoundError,
    Run,
    RunNotFoundError,
    RunStatus,
    Step,
    StepNotFoundError,
    Wait,
    WaitNotFoundError,
)
from wfkit.worlds.postgres.rows import hook_from_row, run_from_row, step_from_row, wait_from_row
from wfkit.worlds.postgres.session import Session, run_transaction
from wfkit.worlds.postgres.sql import TableNames

__all__ = ["PostgresHooks", "PostgresRuns", "PostgresSteps", "PostgresWaits"]

R = TypeVar("R")


def _select(
    engine: Engine, sql: str, params: dict[str, Any], convert: Callable[[Mapping[Any, Any]], R]
) -> list[R]:
    def read(session: Session) -> list[R]:
        return [convert(row) for row in session.rows(sql, params)]

    return run_transaction(engine, read, transactional=False)


class PostgresRuns:
    """``world.runs`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames) -> None:
        self._engine = engine
        self._names = names

    def get(self, run_id: str) -> Run:
        """The run; RunNotFoundError when it does not exist."""
        found = _select(
            self._engine,
            f"SELECT * FROM {self._names.runs} WHERE run_id = %(run_id)s",
            {"run_id": run_id},
            run_from_row,
        )
        if not found:
            raise RunNotFoundError(f"run {run_id!r} not found")
        return found[0]

    def list(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        """Runs, newest first (by run id), optionally filtered by status and workflow."""
        return _select(
            self._engine,
            f"SELECT * FROM {self._names.runs}"
            " WHERE (%(status)s::text IS NULL OR status = %(status)s::text)"
            " AND (%(workflow)s::text IS NULL OR workflow_name = %(workflow)s::text)"
            " ORDER BY run_id DESC LIMIT %(limit)s",
            {"status": status, "workflow": workflow_name, "limit": limit},
            run_from_row,
        )


class PostgresSteps:
    """``world.steps`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames) -> None:
        self._engine = engine
        self._names = names

    def get(self, run_id: str, step_id: str) -> Step:
        """The step; StepNotFoundError when it does not exist."""
        found = _select(
            self._engine,
            f"SELECT * FROM {self._names.steps} WHERE run_id = %(run_id)s AND step_id = %(step_id)s",
            {"run_id": run_id, "step_id": step_id},
            step_from_row,
        )
        if not found:
            raise StepNotFoundError(f"step {step_id!r} of run {run_id!r} not found")
        return found[0]

    def list(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return _select(
            self._engine,
            f"SELECT * FROM {self._names.steps} WHERE run_id = %(run_id)s ORDER BY seq",
            {"run_id": run_id},
            step_from_row,
        )


class PostgresHooks:
    """``world.hooks`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames) -> None:
        self._engine = engine
        self._names = names

    def get(self, hook_id: str) -> Hook:
        """The hook (any status); HookNotFoundError when it does not exist."""
        found = _select(
            self._engine,
            f"SELECT * FROM {self._names.hooks} WHERE hook_id = %(hook_id)s",
            {"hook_id": hook_id},
            hook_from_row,
        )
        if not found:
            raise HookNotFoundError(f"hook {hook_id!r} not found")
        return found[0]

    def get_by_token(self, token: str) -> Hook:
        """The active hook holding ``token``; HookNotFoundError otherwise."""
        found = _select(
            self._engine,
            f"SELECT * FROM {self._names.hooks} WHERE token = %(token)s AND status = 'active'",
            {"token": token},
            hook_from_row,
        )
        if not found:
            raise HookNotFoundError(f"no active hook holds token {token!r}")
        return found[0]

    def list(self, *, run_id: str | None = None) -> list[Hook]:
        """Hooks (of one run if given) in creation order."""
        return _select(
            self._engine,
            f"SELECT * FROM {self._names.hooks}"
            " WHERE %(run_id)s::text IS NULL OR run_id = %(run_id)s::text ORDER BY seq",
            {"run_id": run_id},
            hook_from_row,
        )


class PostgresWaits:
    """``world.waits`` of the Postgres world."""

    def __init__(self, engine: Engine, names: TableNames) -> None:
        self._engine = engine
        self._names = names

    def get(self, run_id: str, wait_id: str) -> Wait:
        """The wait; WaitNotFoundError when it does not exist."""
        found = _select(
            self._engine,
            f"SELECT * FROM {self._names.waits} WHERE run_id = %(run_id)s AND wait_id = %(wait_id)s",
            {"run_id": run_id, "wait_id": wait_id},
            wait_from_row,
        )
        if not found:
            raise WaitNotFoundError(f"wait {wait_id!r} of run {run_id!r} not found")
        return found[0]

    def list(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return _select(
            self._engine,
            f"SELECT * FROM {self._names.waits} WHERE run_id = %(run_id)s ORDER BY seq",
            {"run_id": run_id},
            wait_from_row,
        )
