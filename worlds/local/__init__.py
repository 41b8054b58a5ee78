"""The local world: SQLite (WAL) through SQLAlchemy Core, the embedded default.

One file holds the event log, the materialized records, the queue and the
streams; several worker processes on one machine may share it (write
transactions take SQLite's write lock up front with ``BEGIN IMMEDIATE``). See
``wfkit.worlds.local.schema`` for the storage choices.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from sqlalchemy.engine import make_url

from wfkit.worlds.base import (
    Events,
    Hook,
    Hooks,
    Queue,
    Run,
    Runs,
    RunStatus,
    Step,
    Steps,
    Streams,
    Wait,
    Waits,
)
from wfkit.worlds.local.db import (
    WRITE_OPTION,
    Checkpointer,
    ThreadConnections,
    WriteGate,
    make_engine,
)
from wfkit.worlds.local.events import LocalEvents, LocalRecords
from wfkit.worlds.local.queue import LocalQueue, enqueue_in
from wfkit.worlds.local.schema import ensure_schema
from wfkit.worlds.local.streams import LocalStreams

__all__ = ["LocalWorld"]


class _Runs:
    def __init__(self, records: LocalRecords) -> None:
        self._records = records

    def get(self, run_id: str) -> Run:
        """The run; RunNotFoundError when it does not exist."""
        return self._records.get_run(run_id)

    def list(
        self, *, status: RunStatus | None = None, workflow_name: str | None = None, limit: int = 100
    ) -> list[Run]:
        """Runs, newest first, optionally filtered by status and workflow."""
        return self._records.list_runs(status=status, workflow_name=workflow_name, limit=limit)


class _Steps:
    def __init__(self, records: LocalRecords) -> None:
        self._records = records

    def get(self, run_id: str, step_id: str) -> Step:
        """The step; StepNotFoundError when it does not exist."""
        return self._records.get_step(run_id, step_id)

    def list(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return self._records.list_steps(run_id)


class _Hooks:
    def __init__(self, records: LocalRecords) -> None:
        self._records = records

    def get(self, hook_id: str) -> Hook:
        """The hook (any status); HookNotFoundError when it does not exist."""
        return self._records.get_hook(hook_id)

    def get_by_token(self, token: str) -> Hook:
        """The active hook holding ``token``; HookNotFoundError otherwise."""
        return self._records.get_hook_by_token(token)

    def list(self, *, run_id: str | None = None) -> list[Hook]:
        """Hooks (of one run if given) in creation order."""
        return self._records.list_hooks(run_id)


class _Waits:
    def __init__(self, records: LocalRecords) -> None:
        self._records = records

    def get(self, run_id: str, wait_id: str) -> Wait:
        """The wait; WaitNotFoundError when it does not exist."""
        return self._records.get_wait(run_id, wait_id)

    def list(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return self._records.list_waits(run_id)


class LocalWorld:
    """A World in one SQLite file (``WFKIT_WORLD=local`` or ``sqlite:///path``)."""

    name = "local"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the database at ``path``.

        Raises:
            SchemaVersionError: the file was written by a newer wfkit.
        """
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine(self.path)
        write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        ensure_schema(write_engine, self.path)
        self._checkpointer = Checkpointer(self._engine)
        # A world dropped without close() must not leave its thread running.
        weakref.finalize(self, self._checkpointer.stop)
        changed = threading.Condition()
        self._gate = WriteGate(self.path)
        self._connections = ThreadConnections(self._engine, self._gate)
        queue = LocalQueue(self._engine, self._connections, changed)
        records = LocalRecords(self._engine, self._connections)
        self.events: Events = LocalEvents(
            self._connections, enqueue=enqueue_in, on_enqueued=queue.notify
        )
        self.runs: Runs = _Runs(records)
        self.steps: Steps = _Steps(records)
        self.hooks: Hooks = _Hooks(records)
        self.waits: Waits = _Waits(records)
        self.queue: Queue = queue
        self.streams: Streams = LocalStreams(self._connections, changed)

    @classmethod
    def from_spec(cls, spec: str, *, root: str | os.PathLike[str] | None = None) -> LocalWorld:
        """Open the world a spec names.

        Args:
            spec: ``"local"`` (the file ``<root>/.wfkit/wfkit.db``) or a
                ``sqlite:///path`` URL (``sqlite:////abs/path`` for an absolute one).
            root: the project root for ``"local"`` (default: the current directory).

        Raises:
            ValueError: the spec is neither, or names an in-memory database.
        """
        if spec == "local":
            base = Path(root) if root is not None else Path.cwd()
            return cls(base / ".wfkit" / "wfkit.db")
        if spec.startswith("sqlite:"):
            database = make_url(spec).database
            if not database or database == ":memory:":
                raise ValueError(f"{spec!r}: the local world needs a database file")
            path = Path(database)
            if not path.is_absolute() and root is not None:
                path = Path(root) / path
            return cls(path)
        raise ValueError(f"not a local world spec: {spec!r} (expected 'local' or sqlite:///path)")

    def close(self) -> None:
        """Release the database connections."""
        self._checkpointer.close()
        self._connections.close()
        self._engine.dispose()
        self._gate.close()

    def __repr__(self) -> str:
        return f"LocalWorld({str(self.path)!r})"
