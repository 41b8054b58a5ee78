"""``Run[R]``: the client's lazy handle on one workflow run.

A handle is only an id and a world: making one reads nothing (``get_run`` is a plain
call, as in the DevKit), and a run that does not exist shows up as
``RunNotFoundError`` from the first call that reads it. Each call has an async form
and a ``_sync`` twin; the async forms read the world in a worker thread, so a slow
database never blocks the caller's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator
from typing import Any, Generic, TypeVar

from wfkit.runtime.context import current_mode
from wfkit.runtime.errors import WorkflowRunCancelledError, WorkflowRunFailedError
from wfkit.runtime.serialization import deserialize, deserialize_error
from wfkit.runtime.serialization.at_rest import open_error
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import RUN_TERMINAL, RunStatus, World
from wfkit.worlds.base import Run as RunRecord

__all__ = ["Run", "failure_code", "run_outcome"]

R = TypeVar("R")

_POLL_FIRST = 0.01
_POLL_MAX = 0.2


class Run(Generic[R]):
    """A handle on one workflow run whose result is an ``R``.

    Attributes:
        run_id: the run's id (``wrun_…``).
        world: the world it lives in.
    """

    def __init__(self, run_id: str, world: World | None = None) -> None:
        self.run_id = run_id
        self._world = world

    @property
    def world(self) -> World:
        """The run's world (resolved on first use when the handle was deserialized)."""
        if self._world is None:
            self._world = resolve_world(None)
        return self._world

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.run_id == self.run_id

    def __hash__(self) -> int:
        return hash(self.run_id)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r})"

    def readable(self, namespace: str | None = None, start_index: int = 0) -> AsyncIterator[Any]:
        """The run's stream (default or ``namespace``): bytes chunks as bytes, other
        chunks as the objects written; follows a live run until the stream closes.

        Args:
            namespace: the stream's namespace (None: the default stream).
            start_index: the first chunk to give; a negative index counts from the end
                of the chunks written so far (``-2``: the last two), as in the DevKit.
        """
        from wfkit.runtime.api.streams import read_stream

        return read_stream(self.world, self.run_id, namespace, start_index=start_index)

    def record(self) -> RunRecord:
        """The run's current record (``wfkit.worlds.base.Run``).

        Raises:
            RunNotFoundError: no such run.
        """
        return self.world.runs.get(self.run_id)

    @property
    def workflow_name(self) -> str:
        """The run's workflow ID (reads the run record)."""
        return self.record().workflow_name

    async def status(self) -> RunStatus:
        """``pending``, ``running``, ``completed``, ``failed`` or ``cancelled``.

        Raises:
            RunNotFoundError: no such run.
        """
        return (await asyncio.to_thread(self.record)).status

    def status_sync(self) -> RunStatus:
        """``status`` for sync code."""
        return self.record().status

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the run to end and return its result.

        Polls the run record (10 ms, backing off to 200 ms), each read in a worker thread.

        Raises:
            RunNotFoundError: no such run.
            WorkflowRunFailedError: the run failed; ``cause`` is the rebuilt exception.
            WorkflowRunCancelledError: the run was cancelled.
            TimeoutError: ``timeout`` seconds passed first.
        """
        polls = self._poll_ended(timeout, clip_to_deadline=True)
        next(polls)
        try:
            while True:
                record = await asyncio.to_thread(self.record)
                await asyncio.sleep(polls.send(record))
        except StopIteration as done:
            outcome: R = await asyncio.to_thread(self._outcome, done.value)
            return outcome

    def result_sync(self, timeout: float | None = None) -> R:
        """``result`` for sync code (blocks the calling thread)."""
        polls = self._poll_ended(timeout, clip_to_deadline=False)
        next(polls)
        try:
            while True:
                time.sleep(polls.send(self.record()))
        except StopIteration as done:
            outcome: R = self._outcome(done.value)
            return outcome

    def _outcome(self, record: RunRecord) -> Any:
        """``run_outcome`` of the ended ``record``, reading a failure's code from the log."""
        code = failure_code(self.world, self.run_id) if record.status == "failed" else None
        return run_outcome(record, error_code=code)

    def _poll_ended(
        self, timeout: float | None, *, clip_to_deadline: bool
    ) -> Generator[float, RunRecord, RunRecord]:
        """The polling that ``result`` and ``result_sync`` share, without the I/O.

        Primed with ``next()``, then sent each fresh run record; yields how long
        to pause before the next (10 ms, doubling up to 200 ms); returns the ended
        run's record (``StopIteration.value``).

        Args:
            timeout: seconds to poll for (None: forever).
            clip_to_deadline: never pause past the deadline (``result_sync`` sleeps
                whole back-off steps).

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _POLL_FIRST
        record = yield 0.0  # the priming next(): wait for the first record
        while True:
            if record.status in RUN_TERMINAL:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.run_id} did not finish within {timeout} s")
            if clip_to_deadline and deadline is not None:
                record = yield min(delay, max(0.0, deadline - time.monotonic()))
            else:
                record = yield delay
            delay = min(_POLL_MAX, delay * 2)

    async def cancel(self, reason: str | None = None) -> bool:
        """Cancel the run (``run_cancelled``); False when it had already ended.

        Raises:
            RunNotFoundError: no such run.
        """
        from wfkit.runtime.api.client import cancel_run

        return await cancel_run(self.run_id, world=self.world, reason=reason)

    def cancel_sync(self, reason: str | None = None) -> bool:
        """``cancel`` for sync code."""
        from wfkit.runtime.api.client import cancel_run_sync

        return cancel_run_sync(self.run_id, world=self.world, reason=reason)

    async def retry(self) -> None:
        """Run the failed run again on the current code (``retry_run``).

        Raises:
            EntityConflictError: the run is not failed (nothing is written).
        """
        from wfkit.runtime.api.client import retry_run

        await retry_run(self.run_id, world=self.world)

    def retry_sync(self) -> None:
        """``retry`` for sync code."""
        from wfkit.runtime.api.client import retry_run_sync

        retry_run_sync(self.run_id, world=self.world)


def failure_code(world: World, run_id: str) -> str | None:
    """The ``error_code`` of the run's last ``run_failed`` event (the run record keeps
    the error, not its code); None when there is none."""
    failed = [e for e in world.events.list(run_id) if e.event_type == "run_failed"]
    code = failed[-1].data.get("error_code") if failed else None
    return None if code is None else str(code)


def run_outcome(record: RunRecord, *, error_code: str | None = None) -> Any:
    """The result of an ended run, its values as the client's own classes.

    Args:
        record: the run's record, in a terminal status.
        error_code: a failed run's code (``failure_code``).

    Raises:
        WorkflowRunCancelledError: the run was cancelled.
        WorkflowRunFailedError: the run failed; ``cause`` is its rebuilt exception.
    """
    if record.status == "cancelled":
        raise WorkflowRunCancelledError(record.run_id)
    token = current_mode.set("client")
    try:
        if record.status == "completed":
            return deserialize(record.output)
        error = dict(record.error or {})
        cause: BaseException | None
        try:
            error = open_error(error)  # its message and stack, when encrypted
            cause = deserialize_error(error) if error else None
        except Exception as exc:  # an unreadable error must still surface as a failure
            cause = exc
    finally:
        current_mode.reset(token)
    raise WorkflowRunFailedError(record.run_id, cause, error, error_code)
