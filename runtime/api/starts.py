"""Writing new runs: one ``start``, starts made at the same time, ``start_many``'s chunks.

A start is prepared first (checked, serialized, its ``run_created`` built: a
``PreparedStart``), then written as one ``BatchWrite``: ``run_created`` and the
run's first messages, all or nothing. ``write_starts`` writes many of them with
``Events.create_batches``, at most ``CHUNK`` per call, so a world that commits a
call's writes together pays one commit per chunk instead of one per run. Each start
is answered the way ``start`` answers: a start whose idempotency key (or chosen run
id) is already taken returns the run that holds it, and starts inside one call that
share a key or a run id share the first one's run (so they never race each other).

Async starts made together group themselves (``LoopStarts``, one per event loop):
the starts made while a start's write is in flight are prepared and written
together by the next worker-thread job, so ``await asyncio.gather(*(start(wf,
i) for i in range(2000)))`` costs a handful of transactions, not 2,000, and a lone
``await start(...)`` is still one thread hop. Each start is prepared in its caller's
context (its trace, the step it runs in, the world that step uses).
Rejected: grouping in the worker threads (a start that finds a write in flight
queues for a writer thread). The thread pool runs a few starts at a time, so a
start rarely found another in flight unless the world's commit was slow: on the
memory world 2,000 gathered starts still made 2,000 writes.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from wfkit.runtime.flow.options import StartOptions
from wfkit.runtime.flow.queues import warn_undeclared
from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    EventRequest,
    RunNotFoundError,
    World,
    WorldError,
)

__all__ = ["CHUNK", "LoopStarts", "PreparedStart", "loop_starts", "write_start", "write_starts"]

CHUNK = 250
"""Most runs written by one ``create_batches`` call (one transaction where the world
groups them): large enough that the commit is a small share of the work, small enough
that a transaction holds its locks briefly."""


@dataclass(slots=True)
class PreparedStart:
    """A new run, ready to write: its ``run_created`` and first messages."""

    write: BatchWrite
    idempotency_key: str | None
    chosen_id: bool
    """The caller chose the run id: an existing run with that id is the answer."""
    queue_name: str | None = None
    """The named queue the run waits in (None: it starts at once)."""

    @classmethod
    def build(
        cls,
        *,
        run_id: str,
        chosen_id: bool,
        workflow_name: str,
        deployment_id: str,
        options: StartOptions,
        sealed_input: Any,
        execution_context: dict[str, object],
    ) -> PreparedStart:
        """The ``run_created`` event and messages ``start`` writes for these values."""
        data = {
            "workflow_name": workflow_name,
            "input": sealed_input,
            "deployment_id": deployment_id,
            "execution_context": execution_context,
            **options.event_data(),
        }
        write = BatchWrite(
            run_id,
            [EventRequest(event_type="run_created", data=data)],
            messages=options.messages(workflow_name, run_id, deployment_id),
        )
        return cls(write, options.idempotency_key, chosen_id, options.queue_name)


#: A start's answer: the id of the run it started or found, or why it was refused.
StartOutcome = str | WorldError


def write_starts(world: World, starts: Sequence[PreparedStart]) -> list[StartOutcome]:
    """Write ``starts`` in chunks of ``CHUNK``; each one's run id, or its refusal.

    Raises:
        Exception: whatever the world raises for a whole call (a lost connection);
            earlier chunks stay written.
    """
    if len(starts) == 1:
        answers = _write_chunk(world, list(starts))
    else:
        shared = _first_of_each(starts)
        unique = [index for index, first in enumerate(shared) if first == index]
        outcomes: dict[int, StartOutcome] = {}
        for chunk in _chunks(unique, CHUNK):
            chunk_answers = _write_chunk(world, [starts[index] for index in chunk])
            outcomes.update(zip(chunk, chunk_answers, strict=True))
        answers = [outcomes[first] for first in shared]
    _warn_undeclared_queues(world, starts, answers)
    return answers


def write_start(world: World, start: PreparedStart) -> str:
    """Write one start now: its run id (the existing run's, for a duplicate).

    Raises:
        WorldError: the world refused it.
    """
    [outcome] = _write_chunk(world, [start])
    if isinstance(outcome, WorldError):
        raise outcome
    _warn_undeclared_queues(world, [start], [outcome])
    return outcome


def _warn_undeclared_queues(
    world: World, starts: Sequence[PreparedStart], answers: Sequence[StartOutcome]
) -> None:
    """``warn_undeclared`` for the started runs that wait in named queues; a world
    that cannot answer is not worth failing starts that were written."""
    queued = [
        (answer, start.queue_name)
        for start, answer in zip(starts, answers, strict=True)
        if start.queue_name is not None and isinstance(answer, str)
    ]
    if not queued:
        return
    try:
        warn_undeclared(world, queued)
    except WorldError:
        pass


def _first_of_each(starts: Sequence[PreparedStart]) -> list[int]:
    """For each start, the index of the first start sharing its idempotency key or its
    chosen run id (its own index when none does): the one that is written."""
    seen: dict[tuple[str, str], int] = {}
    shared = []
    for index, start in enumerate(starts):
        names = []
        if start.idempotency_key is not None:
            names.append(("key", start.idempotency_key))
        if start.chosen_id:
            names.append(("id", start.write.run_id))
        first = next((seen[name] for name in names if name in seen), index)
        for name in names:
            seen.setdefault(name, first)
        shared.append(first)
    return shared


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _write_chunk(world: World, starts: list[PreparedStart]) -> list[StartOutcome]:
    """One transaction's worth of starts (a lone start is a plain ``create_batch``)."""
    outcomes: list[list[Any] | WorldError]
    if len(starts) == 1:
        write = starts[0].write
        try:
            outcomes = [
                world.events.create_batch(write.run_id, write.requests, messages=write.messages)
            ]
        except WorldError as exc:
            outcomes = [exc]
    else:
        outcomes = world.events.create_batches([start.write for start in starts])
    return [_answer(world, s, o) for s, o in zip(starts, outcomes, strict=True)]


def _answer(world: World, start: PreparedStart, outcome: list[Any] | WorldError) -> StartOutcome:
    """The run a start stands for: its own, or (refused as a duplicate) the run that
    already holds its idempotency key or its chosen id."""
    if not isinstance(outcome, WorldError):
        return start.write.run_id
    if not isinstance(outcome, EntityConflictError):
        return outcome
    if start.idempotency_key is not None:
        try:  # the run started with this key, by this process or another
            return world.runs.get_by_idempotency_key(start.idempotency_key).run_id
        except RunNotFoundError:
            pass  # the conflict was something else
    if not start.chosen_id:
        return outcome
    try:
        world.runs.get(start.write.run_id)
    except RunNotFoundError as missing:  # the conflict was something else
        return missing
    return start.write.run_id


Prepare = Callable[[], tuple[World, PreparedStart]]
"""Makes one start ready (in a worker thread): its world and its ``PreparedStart``."""


@dataclass(slots=True)
class _Request:
    prepare: Prepare
    context: contextvars.Context
    answer: asyncio.Future[tuple[World, str]]


class LoopStarts:
    """The async starts of one event loop, written together (see the module docstring).

    Lives on its loop's thread. A start made while no job is in flight is sent at
    once, alone (a lone start waits for nothing); starts made while a job is in
    flight queue, and when it ends they all go in the next job.
    """

    def __init__(self) -> None:
        self._pending: list[_Request] = []
        self._busy = False

    def start(
        self, loop: asyncio.AbstractEventLoop, prepare: Prepare
    ) -> asyncio.Future[tuple[World, str]]:
        """Queue one start: its world and run id, or what refused it, when written."""
        answer: asyncio.Future[tuple[World, str]] = loop.create_future()
        self._pending.append(_Request(prepare, contextvars.copy_context(), answer))
        if not self._busy:
            self._busy = True
            self._flush(loop)
        return answer

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        _WRITERS.submit(self._job, loop, batch)

    def _job(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        """In a ``_WRITERS`` thread: write the batch, then answer it on the loop."""
        try:
            outcomes = _prepare_and_write(batch)
        except BaseException as exc:
            loop.call_soon_threadsafe(self._settle, loop, batch, [exc] * len(batch))
            raise
        loop.call_soon_threadsafe(self._settle, loop, batch, outcomes)

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Request],
        outcomes: Sequence[tuple[World, str] | BaseException],
    ) -> None:
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.answer.done():  # its caller was cancelled
                continue
            if isinstance(outcome, BaseException):
                request.answer.set_exception(outcome)
            else:
                request.answer.set_result(outcome)
        if self._pending:
            self._flush(loop)
        else:
            self._busy = False


def _prepare_and_write(batch: list[_Request]) -> list[tuple[World, str] | Exception]:
    """A job: prepare each start in its caller's context, write each world's starts
    together; each start's world and run id, or the exception that refused it."""
    prepared: dict[int, tuple[World, PreparedStart]] = {}
    refused: dict[int, Exception] = {}
    for index, request in enumerate(batch):
        try:
            prepared[index] = request.context.run(request.prepare)
        except Exception as exc:
            refused[index] = exc
    written = _write_by_world(prepared)
    return [refused[index] if index in refused else written[index] for index in range(len(batch))]


def _write_by_world(
    prepared: dict[int, tuple[World, PreparedStart]],
) -> dict[int, tuple[World, str] | Exception]:
    """Write prepared starts, one ``write_starts`` per world; answers by the same keys."""
    by_world: dict[int, list[int]] = {}
    for index, (world, _) in prepared.items():
        by_world.setdefault(id(world), []).append(index)
    written: dict[int, tuple[World, str] | Exception] = {}
    for indexes in by_world.values():
        world = prepared[indexes[0]][0]
        try:
            answers: list[StartOutcome | Exception] = list(
                write_starts(world, [prepared[index][1] for index in indexes])
            )
        except Exception as failed:
            answers = [failed] * len(indexes)
        for index, answer in zip(indexes, answers, strict=True):
            written[index] = answer if isinstance(answer, Exception) else (world, answer)
    return written


_WRITERS = ThreadPoolExecutor(thread_name_prefix="wfkit-start")
"""The threads that write async starts. Not the loop's default executor: its
``run_in_executor`` wraps each job in a loop future we do not need (a lone start
cost 7% more CPU than ``asyncio.to_thread`` did, counted with callgrind)."""
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopStarts] = (
    weakref.WeakKeyDictionary()
)
_loops_lock = threading.Lock()


def loop_starts(loop: asyncio.AbstractEventLoop) -> LoopStarts:
    """``loop``'s ``LoopStarts`` (a fresh one for a loop that cannot be weakly
    referenced: its starts are then written one job each)."""
    try:
        starts = _loops.get(loop)
    except TypeError:
        return LoopStarts()
    if starts is None:
        with _loops_lock:
            starts = _loops.setdefault(loop, LoopStarts())
    return starts
