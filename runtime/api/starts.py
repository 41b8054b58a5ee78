"""Writing new runs: one ``start``, starts made at the same time, ``start_many``'s chunks.

A start is prepared first (checked, serialized, its ``run_created`` built: a
``PreparedStart``), then written as one ``BatchWrite``: ``run_created`` and the
run's first messages, all or nothing. ``write_starts`` writes many of them with
``Events.create_batches``, at most ``CHUNK`` per call, so a world that commits a
call's writes together pays one commit per chunk instead of one per run. Each start
is answered the way ``start`` answers: a start whose idempotency key (or chosen run
id) is already taken returns the run that holds it, and starts inside one call that
share a key or a run id share the first one's run (so they never race each other).

Concurrent starts group themselves (``StartCommitter``, one per world): the first
start of a quiet world writes at once in its caller's thread, exactly as a lone
start always has; starts made while a write is in flight queue up and are written
together, by one writer thread, as soon as it ends. ``await asyncio.gather(*(start(wf,
i) for i in range(2000)))`` therefore costs a handful of transactions, not 2,000.
Rejected: a committer on the caller's event loop collecting one loop tick's starts.
It would have to prepare starts on the loop (deployment lookup and serialization
can read files) and hop to a thread for the write; grouping in the threads keeps
the loop free and a lone start at one thread hop, as before.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from wfkit.runtime.flow.options import StartOptions
from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    EventRequest,
    RunNotFoundError,
    World,
    WorldError,
)

__all__ = ["CHUNK", "PreparedStart", "StartCommitter", "committer_for", "write_starts"]

CHUNK = 250
"""Most runs written by one ``create_batches`` call (one transaction where the world
groups them): large enough that the commit is a small share of the work, small enough
that a transaction holds its locks briefly."""


@dataclass(frozen=True, slots=True)
class PreparedStart:
    """A new run, ready to write: its ``run_created`` and first messages."""

    write: BatchWrite
    idempotency_key: str | None
    chosen_id: bool
    """The caller chose the run id: an existing run with that id is the answer."""

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
        return cls(write, options.idempotency_key, chosen_id)


#: A start's answer: the id of the run it started or found, or why it was refused.
StartOutcome = str | WorldError


def write_starts(world: World, starts: Sequence[PreparedStart]) -> list[StartOutcome]:
    """Write ``starts`` in chunks of ``CHUNK``; each one's run id, or its refusal.

    Raises:
        Exception: whatever the world raises for a whole call (a lost connection);
            earlier chunks stay written.
    """
    shared = _first_of_each(starts)
    unique = [index for index, first in enumerate(shared) if first == index]
    outcomes: dict[int, StartOutcome] = {}
    for chunk in _chunks(unique, CHUNK):
        answers = _write_chunk(world, [starts[index] for index in chunk])
        outcomes.update(zip(chunk, answers, strict=True))
    return [outcomes[first] for first in shared]


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


class StartCommitter:
    """Group commit for one world's starts, across threads (see the module docstring).

    At most one write is in flight per world. ``submit`` writes at once, in the
    caller's thread, when none is; otherwise it queues the start and returns, and
    whoever ends the write in flight hands what queued meanwhile to a writer thread,
    which writes it in chunks until the queue is empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[World, PreparedStart, Future[str]]] = []
        self._writing = False

    def submit(self, world: World, start: PreparedStart) -> str | Future[str]:
        """Write ``start`` now (its run id) or with the next group (a future of it).

        Raises:
            WorldError: written now and refused (a queued start's future holds it).
        """
        with self._lock:
            if self._writing:
                future: Future[str] = Future()
                self._queue.append((world, start, future))
                return future
            self._writing = True
        try:
            [outcome] = _write_chunk(world, [start])
        finally:
            self._hand_over()
        if isinstance(outcome, WorldError):
            raise outcome
        return outcome

    def _hand_over(self) -> None:
        """End a write: idle when nothing queued, else a writer thread takes the queue."""
        with self._lock:
            if not self._queue:
                self._writing = False
                return
        threading.Thread(target=self._drain, name="wfkit-start-writer").start()

    def _drain(self) -> None:
        """Write the queue in chunks until it is empty (the writer thread)."""
        while True:
            with self._lock:
                group, self._queue = self._queue[:CHUNK], self._queue[CHUNK:]
                if not group:
                    self._writing = False
                    return
            world = group[0][0]
            futures = [future for _, _, future in group]
            try:
                _settle(futures, write_starts(world, [start for _, start, _ in group]))
            except Exception as exc:
                for future in futures:
                    future.set_exception(exc)


def _settle(futures: list[Future[str]], outcomes: list[StartOutcome]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if isinstance(outcome, WorldError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


_committers: weakref.WeakKeyDictionary[World, StartCommitter] = weakref.WeakKeyDictionary()
_committers_lock = threading.Lock()


def committer_for(world: World) -> StartCommitter:
    """``world``'s committer (a fresh, ungrouped one for a world that cannot be weakly
    referenced: its starts are then written one by one, as before)."""
    with _committers_lock:
        try:
            committer = _committers.get(world)
            if committer is None:
                committer = _committers[world] = StartCommitter()
        except TypeError:
            return StartCommitter()
        return committer
