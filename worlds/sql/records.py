"""The record reads every SQL world makes, written once as Core statements.

``RecordStatements`` holds the lookups by key that both a world's write path
(its ``RecordLoader``, inside a transaction) and its read views need.
``SqlRuns``, ``SqlSteps``, ``SqlHooks`` and ``SqlWaits`` serve ``world.runs``
… ``world.waits`` from them; a world only says how a statement is run, by passing
a ``Prepare`` function (SQLite: a compiled statement on the thread's kept
connection; Postgres: a compiled statement on a pooled connection, retried like
any other).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, literal_column, select

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
from wfkit.worlds.sql.codecs import RowCodec, RowLike
from wfkit.worlds.sql.schema import Tables

__all__ = ["Prepare", "Query", "RecordStatements", "SqlHooks", "SqlRuns", "SqlSteps", "SqlWaits"]

Query = Callable[..., Sequence[RowLike]]
"""A prepared statement: called with its parameters by name, returns its rows."""
Prepare = Callable[[Select[Any]], Query]
"""How a world prepares a statement (once) to run it many times."""


@dataclass(frozen=True)
class RecordStatements:
    """Core SELECTs of records by key and by run (parameters in ``bindparam``
    names: ``run_id``, ``step_id``, ``hook_id``, ``wait_id``, ``token``,
    ``event_type``, ``limit``)."""

    run: Select[Any]
    run_status: Select[Any]
    step: Select[Any]
    steps_of_run: Select[Any]
    hook: Select[Any]
    active_hook_by_token: Select[Any]
    hooks_of_run: Select[Any]
    all_hooks: Select[Any]
    wait: Select[Any]
    waits_of_run: Select[Any]
    latest_event_of_type: Select[Any]
    last_event_id: Select[Any]
    tables: Tables

    @classmethod
    def build(cls, tables: Tables) -> RecordStatements:
        """The statements over ``tables``."""
        runs, steps, hooks, waits, events = (
            tables.runs,
            tables.steps,
            tables.hooks,
            tables.waits,
            tables.events,
        )
        r, s, h, w, e = runs.c, steps.c, hooks.c, waits.c, events.c
        order = tables.creation_order
        return cls(
            run=select(runs).where(r.run_id == bindparam("run_id")),
            run_status=select(r.status).where(r.run_id == bindparam("run_id")),
            step=select(steps).where(
                s.run_id == bindparam("run_id"), s.step_id == bindparam("step_id")
            ),
            steps_of_run=select(steps)
            .where(s.run_id == bindparam("run_id"))
            .order_by(order(steps)),
            hook=select(hooks).where(h.hook_id == bindparam("hook_id")),
            # The constant is inlined, not a parameter: a plan made without parameter
            # values (Postgres' generic plan of a prepared statement) can then use the
            # partial index on active tokens instead of being made again per execution.
            active_hook_by_token=select(hooks).where(
                h.token == bindparam("token"), h.status == literal_column("'active'")
            ),
            hooks_of_run=select(hooks)
            .where(h.run_id == bindparam("run_id"))
            .order_by(order(hooks)),
            all_hooks=select(hooks).order_by(order(hooks)),
            wait=select(waits).where(
                w.run_id == bindparam("run_id"), w.wait_id == bindparam("wait_id")
            ),
            waits_of_run=select(waits)
            .where(w.run_id == bindparam("run_id"))
            .order_by(order(waits)),
            latest_event_of_type=select(events)
            .where(e.run_id == bindparam("run_id"), e.event_type == bindparam("event_type"))
            .order_by(e.seq.desc())
            .limit(1),
            last_event_id=select(e.event_id)
            .where(e.run_id == bindparam("run_id"))
            .order_by(e.seq.desc())
            .limit(1),
            tables=tables,
        )

    def runs(self, *, by_status: bool, by_workflow: bool) -> Select[Any]:
        """Runs newest first (by id), up to ``limit``; filtered by ``status`` and
        ``workflow_name`` when asked (one statement per combination, so each uses
        its index)."""
        r = self.tables.runs.c
        query = select(self.tables.runs).order_by(r.run_id.desc()).limit(bindparam("limit"))
        if by_status:
            query = query.where(r.status == bindparam("status"))
        if by_workflow:
            query = query.where(r.workflow_name == bindparam("workflow_name"))
        return query

    def queued_runs(self, *, by_status: bool, by_start: bool) -> Select[Any]:
        """A named queue's runs in admission order (priority, then id), up to
        ``limit``; filtered by ``status`` and by ``started_at >= started_after``
        when asked."""
        r = self.tables.runs.c
        query = (
            select(self.tables.runs)
            .where(r.queue_name == bindparam("queue_name"))
            .order_by(r.queue_priority, r.run_id)
            .limit(bindparam("limit"))
        )
        if by_status:
            query = query.where(r.status == bindparam("status"))
        if by_start:
            query = query.where(r.started_at >= bindparam("started_after"))
        return query


class SqlRuns:
    """``world.runs`` of a SQL world."""

    def __init__(
        self, statements: RecordStatements, codec: RowCodec[Run], prepare: Prepare
    ) -> None:
        self._codec = codec
        self._get = prepare(statements.run)
        self._lists = {
            (by_status, by_workflow): prepare(
                statements.runs(by_status=by_status, by_workflow=by_workflow)
            )
            for by_status in (False, True)
            for by_workflow in (False, True)
        }
        r = statements.tables.runs.c
        self._by_key = prepare(
            select(statements.tables.runs).where(r.idempotency_key == bindparam("key"))
        )
        self._queued = {
            (by_status, by_start): prepare(
                statements.queued_runs(by_status=by_status, by_start=by_start)
            )
            for by_status in (False, True)
            for by_start in (False, True)
        }
        # How this database stores an instant (the codec's own conversion).
        self._stored_time: Callable[[datetime], Any] = lambda value: codec.params(
            Run(
                run_id="",
                workflow_name="",
                status="pending",
                created_at=value,
                updated_at=value,
            )
        )["created_at"]

    def get(self, run_id: str) -> Run:
        """The run; RunNotFoundError when it does not exist."""
        rows = self._get(run_id=run_id)
        if not rows:
            raise RunNotFoundError(f"run {run_id!r} not found")
        return self._codec.from_row(rows[0])

    def list(
        self, *, status: RunStatus | None = None, workflow_name: str | None = None, limit: int = 100
    ) -> list[Run]:
        """Runs, newest first (by run id), optionally filtered by status and workflow."""
        query = self._lists[(status is not None, workflow_name is not None)]
        rows = query(status=status, workflow_name=workflow_name, limit=limit)
        return [self._codec.from_row(row) for row in rows]

    def get_by_idempotency_key(self, idempotency_key: str) -> Run:
        """The run started with ``idempotency_key``; RunNotFoundError when none was."""
        rows = self._by_key(key=idempotency_key)
        if not rows:
            raise RunNotFoundError(f"no run has idempotency key {idempotency_key!r}")
        return self._codec.from_row(rows[0])

    def list_queued(
        self,
        queue_name: str,
        *,
        status: RunStatus | None = None,
        started_after: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[Run]:
        """Runs of a named queue in admission order (priority, then run id)."""
        query = self._queued[(status is not None, started_after is not None)]
        rows = query(
            queue_name=queue_name,
            status=status,
            started_after=None if started_after is None else self._stored_time(started_after),
            limit=limit,
        )
        return [self._codec.from_row(row) for row in rows]


class SqlSteps:
    """``world.steps`` of a SQL world."""

    def __init__(
        self, statements: RecordStatements, codec: RowCodec[Step], prepare: Prepare
    ) -> None:
        self._codec = codec
        self._get = prepare(statements.step)
        self._of_run = prepare(statements.steps_of_run)

    def get(self, run_id: str, step_id: str) -> Step:
        """The step; StepNotFoundError when it does not exist."""
        rows = self._get(run_id=run_id, step_id=step_id)
        if not rows:
            raise StepNotFoundError(f"step {step_id!r} of run {run_id!r} not found")
        return self._codec.from_row(rows[0])

    def list(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return [self._codec.from_row(row) for row in self._of_run(run_id=run_id)]


class SqlHooks:
    """``world.hooks`` of a SQL world."""

    def __init__(
        self, statements: RecordStatements, codec: RowCodec[Hook], prepare: Prepare
    ) -> None:
        self._codec = codec
        self._get = prepare(statements.hook)
        self._by_token = prepare(statements.active_hook_by_token)
        self._of_run = prepare(statements.hooks_of_run)
        self._all = prepare(statements.all_hooks)

    def get(self, hook_id: str) -> Hook:
        """The hook (any status); HookNotFoundError when it does not exist."""
        rows = self._get(hook_id=hook_id)
        if not rows:
            raise HookNotFoundError(f"hook {hook_id!r} not found")
        return self._codec.from_row(rows[0])

    def get_by_token(self, token: str) -> Hook:
        """The active hook holding ``token``; HookNotFoundError otherwise."""
        rows = self._by_token(token=token)
        if not rows:
            raise HookNotFoundError(f"no active hook holds token {token!r}")
        return self._codec.from_row(rows[0])

    def list(self, *, run_id: str | None = None) -> list[Hook]:
        """Hooks (of one run if given) in creation order."""
        rows = self._all() if run_id is None else self._of_run(run_id=run_id)
        return [self._codec.from_row(row) for row in rows]


class SqlWaits:
    """``world.waits`` of a SQL world."""

    def __init__(
        self, statements: RecordStatements, codec: RowCodec[Wait], prepare: Prepare
    ) -> None:
        self._codec = codec
        self._get = prepare(statements.wait)
        self._of_run = prepare(statements.waits_of_run)

    def get(self, run_id: str, wait_id: str) -> Wait:
        """The wait; WaitNotFoundError when it does not exist."""
        rows = self._get(run_id=run_id, wait_id=wait_id)
        if not rows:
            raise WaitNotFoundError(f"wait {wait_id!r} of run {run_id!r} not found")
        return self._codec.from_row(rows[0])

    def list(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return [self._codec.from_row(row) for row in self._of_run(run_id=run_id)]
