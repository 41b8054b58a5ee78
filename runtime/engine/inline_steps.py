"""Inline steps: run a suspension's new steps in this worker, right away.

The orchestrator writes ``[step_created, step_started]`` for up to
``step_concurrency`` steps at once and hands them to an ``InlineSteps``, which
runs each attempt as an asyncio task (``wfkit.runtime.engine.executor.attempt_step``) and
wakes the run's handler when it finishes. The handler collects the outcomes as
event requests and group-commits them with whatever the workflow does next.

Steps that cannot finish here (the handler stops, or the attempt died with a
``BaseException``) are handed to the queue as step messages. A step that runs long
is kept claimed by a heartbeat thread (``heartbeats``), so that no other worker runs
it too while it runs, and one takes it over if this worker dies.

Eager start. Each attempt's task runs its first part at once, inside ``start``, with
the task as asyncio's current task and in the task's own context (what Python
3.12's eager tasks do; 3.11 has none, ``_EagerStart`` does it by hand): a step
that never suspends (a computation, a lookup in memory) has its outcome
ready before the handler looks, and costs no wake-up of the handler, no event and
no loop turn; one that suspends goes on in its task exactly as before. Its task
still ends in a loop turn of its own (nothing awaits it). Rejected: running a
step's body in the handler's own task (``asyncio.current_task()``,
``asyncio.timeout`` and ``TaskGroup`` inside the step would name the handler).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from asyncio import tasks as asyncio_tasks
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

from wfkit.runtime.engine.executor import attempt_step
from wfkit.runtime.engine.heartbeats import StepHeartbeats
from wfkit.runtime.engine.messages import step_message
from wfkit.runtime.engine.run_state import RunState
from wfkit.runtime.observability.logs import log_fields
from wfkit.worlds.base import EventRequest, Run, Step, World, WorldError

__all__ = ["InlineSteps"]

log = logging.getLogger("wfkit.orchestrator")


class InlineSteps:
    """The inline steps of one worker, across all the runs it drives.

    Args:
        world: where the steps' runs live.
        step_concurrency: most steps running inline at once.
        lease_seconds: the worker's lease; a step running longer than a sixth of it is
            kept claimed by a heartbeat thread (``heartbeats``).
        url: the deployment URL shown in step metadata.
        on_enqueue: called after step messages were enqueued (wakes the worker loop).
    """

    def __init__(
        self,
        world: World,
        *,
        step_concurrency: int,
        lease_seconds: float,
        url: str,
        on_enqueue: Callable[[], None] | None,
    ) -> None:
        self.world = world
        self.step_concurrency = step_concurrency
        self.url = url
        self._on_enqueue = on_enqueue
        self._step_slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = 0
        self._heartbeats = StepHeartbeats(world, lease_seconds=lease_seconds)

    @property
    def running(self) -> int:
        """How many steps run inline now."""
        return self._running

    def free_slots(self) -> int:
        """How many more steps may start inline now."""
        return self.step_concurrency - self._running

    def start(self, state: RunState, step: Step) -> None:
        """Run ``step`` as a task of ``state``'s run, its first part at once (the
        module docstring); its handler is woken when it ends, unless it ended already.

        Args:
            state: the run's live replay (the task is kept in its ``inline_tasks``;
                a step that ended in its first part is in ``finished_inline`` too).
            step: the step record ``step_started`` returned (its attempt is this attempt).
        """
        cid = step.step_id
        self._running += 1
        beat = self._heartbeats.started(
            state.run.run_id, cid, step.step_name, deployment_id=state.run.deployment_id
        )
        loop = asyncio.get_running_loop()
        runner = _EagerStart(self._run(state.run, step))
        context = contextvars.copy_context()
        task = loop.create_task(runner, name=f"wfkit-step-{cid}", context=context)
        state.inline_tasks[cid] = task
        runner.start(loop, task, context)
        if runner.outcome is not None:
            self._running -= 1
            state.finished_inline.append(cid)
            self._heartbeats.finished(beat, recorded=True)
            return

        def finished(done: asyncio.Task[EventRequest]) -> None:
            self._running -= 1
            state.finished_inline.append(cid)
            state.news.set()
            recorded = not done.cancelled() and done.exception() is None
            self._heartbeats.finished(beat, recorded=recorded)

        task.add_done_callback(finished)

    async def _run(self, run: Run, step: Step) -> EventRequest:
        async with self._slots():
            return await attempt_step(run, step, world=self.world, url=self.url)

    def _slots(self) -> asyncio.Semaphore:
        """The step semaphore of the running loop (a worker may outlive one asyncio.run)."""
        loop = asyncio.get_running_loop()
        if self._step_slots is None or self._loop is not loop:
            self._step_slots = asyncio.Semaphore(self.step_concurrency)
            self._loop = loop
        return self._step_slots

    def collect_finished(self, state: RunState) -> list[EventRequest]:
        """The outcomes of ``state``'s finished inline steps, as event requests to
        write; a step that ended without one is re-queued."""
        requests: list[EventRequest] = []
        lost: list[str] = []
        for cid in state.finished_inline:
            task = state.inline_tasks.pop(cid, None)
            if task is None:
                continue
            runner = task.get_coro()
            if isinstance(runner, _EagerStart) and runner.outcome is not None:
                requests.append(runner.outcome)
                continue
            if task.cancelled() or task.exception() is not None:
                # attempt_step turns every Exception into an event; this was a
                # BaseException (or a cancellation) from inside the step. Nothing was
                # recorded: let the queue run it again.
                run_id = state.run.run_id
                log.error(
                    "inline step %s of run %s ended without an outcome; re-queued",
                    cid,
                    run_id,
                    extra=log_fields(run_id, cid),
                )
                lost.append(cid)
                continue
            requests.append(task.result())
        state.finished_inline.clear()
        if lost:
            self._enqueue_step_messages(state, lost)
        return requests

    def hand_off(self, state: RunState) -> None:
        """Queue the inline steps a handler leaves unfinished (shutdown, error), so
        that another worker runs them now rather than after a sweep."""
        self._enqueue_step_messages(state, list(state.inline_tasks))

    def _enqueue_step_messages(self, state: RunState, correlation_ids: Sequence[str]) -> None:
        """Enqueue a step message for each of ``state``'s steps named by id."""
        for cid in correlation_ids:
            name = state.step_names.get(cid)
            if name is None:
                continue
            message = step_message(
                state.run.run_id, cid, name, deployment_id=state.run.deployment_id
            )
            try:
                self.world.queue.enqueue(
                    message.queue, message.payload, idempotency_key=message.idempotency_key
                )
            except WorldError as exc:
                run_id = state.run.run_id
                log.warning(
                    "could not hand off step %s of run %s: %s",
                    cid,
                    run_id,
                    exc,
                    extra=log_fields(run_id, cid),
                )
        if correlation_ids and self._on_enqueue is not None:
            self._on_enqueue()


_NOTHING_YIELDED: Any = object()


class _EagerStart(Coroutine[Any, Any, EventRequest]):
    """What an inline step's task runs: the attempt, whose first part ``start`` runs
    at once (the module docstring).

    After ``start``: the attempt ended with its ``outcome`` (not None), and the task
    ends at its first turn with it; or the attempt suspended, and the task's first
    turn takes up what it yielded (its first ``send`` returns it), the later ones go
    to the attempt; or the first part raised, and the task's first turn raises it (so
    a ``BaseException`` from a step ends its task as it always did).
    """

    __slots__ = ("_coro", "_error", "_yielded", "outcome")

    def __init__(self, coro: Coroutine[Any, Any, EventRequest]) -> None:
        self._coro = coro
        self._yielded: Any = _NOTHING_YIELDED
        self._error: BaseException | None = None
        self.outcome: EventRequest | None = None
        """What the attempt asks to record, once it ended (it always asks something)."""

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[EventRequest],
        context: contextvars.Context,
    ) -> None:
        """Run the attempt's first part now, as ``task`` (its current task and context)."""
        caller = asyncio_tasks.current_task(loop)
        if caller is not None:
            asyncio_tasks._leave_task(loop, caller)
        asyncio_tasks._enter_task(loop, task)
        try:
            context.run(self._first_part)
        finally:
            asyncio_tasks._leave_task(loop, task)
            if caller is not None:
                asyncio_tasks._enter_task(loop, caller)

    def _first_part(self) -> None:
        try:
            self._yielded = self._coro.send(None)
        except StopIteration as stop:
            self.outcome = stop.value
        except BaseException as exc:  # raised again by the task's first turn
            self._error = exc

    def send(self, value: Any) -> Any:
        if self.outcome is not None:
            raise StopIteration(self.outcome)
        error = self._error
        if error is not None:
            self._error = None
            raise error
        yielded = self._yielded
        if yielded is not _NOTHING_YIELDED:
            self._yielded = _NOTHING_YIELDED
            return yielded
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        error = typ if isinstance(typ, BaseException) else val
        if error is None:
            error = typ()
        if self.outcome is not None or self._error is not None:
            raise error
        yielded = self._yielded
        if yielded is not _NOTHING_YIELDED:
            # Cancelled before its task took up the future the first part waits on:
            # cancel that future, as the task would have.
            self._yielded = _NOTHING_YIELDED
            if asyncio.isfuture(yielded):
                yielded.cancel()
        return self._coro.throw(error)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, EventRequest]:
        raise TypeError("an inline step's runner is run by its task only")
