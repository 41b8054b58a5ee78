"""``Events.create_batches`` on Postgres: several runs' batches in one transaction.

A worker's group commit hands over one batch per run; written one transaction
each they would cost a commit (an fsync, two round trips) apiece. Here a group
costs one transaction and two round trips, whatever its size:

1. ``BEGIN`` and ``SELECT … FOR UPDATE`` of every run the group writes, in run
   id order (two groups locking overlapping runs never wait on each other in a
   cycle), pipelined with one prefetch per entity kind of the steps, hooks and
   waits the requests name, and with a lookup of the idempotency keys the
   group's new runs claim.
2. Each write is planned by ``plan_events`` against those records; a refused
   one gets its error in its slot and contributes nothing (nor its messages).
   Every planned write's statements, then ``COMMIT``, in one pipeline.

A group whose every write can be planned without reading skips step 1: a batch
of step events, or of the run's start or ending (an ending only when the run holds
no hook or wait to release), continuing from what this process last wrote to or
read of the whole log of its run (``tails``), or a
write creating its run without an idempotency key (``tails.plan_new_run``; with
one, step 1 looks the key up, so that a start retried with the same keys is
refused write by write rather than sinking the group). Their statements (in run
id order; a step batch's guarded by its run's ``last_event_id``) go with
``BEGIN`` and ``COMMIT`` in one round trip, and a write whose guard finds its
log moved on writes nothing and is written again on its own, the ordinary way,
which gives the authoritative answer. In a group that takes step 1 anyway, a
step batch is planned on its tail when the lock confirms the tail.

A unique violation at write time (an idempotency key or run id claimed by
another process meanwhile, a step the tail did not know of, two runs of the
group creating hooks with one token) aborts the whole transaction; the group is
then written again one transaction per write, where it refuses only its own
write. A group of one, or one naming a run twice, is written write by write too
(the second write of a run must see the first).

If the connection drops while ``COMMIT`` is in flight, the outcome of every
write is unknown: each slot holds the ``DatabaseUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    EventRequest,
    PlannedWrites,
    Run,
    WorldError,
    plan_events,
)
from wfkit.worlds.postgres.loader import LoaderSql, TransactionLoader, message_rows
from wfkit.worlds.postgres.session import Rows, Session, Statement, run_transaction
from wfkit.worlds.postgres.sql import TableNames
from wfkit.worlds.postgres.writes import plan_statements
from wfkit.worlds.sql.tails import (
    RunTail,
    TailCache,
    plan_new_run,
    plan_on_tail,
    qualifies,
)

__all__ = ["GroupWriter"]

OneByOne = Callable[[Sequence[BatchWrite]], list[BatchOutcome]]


class _UniqueClash(Exception):
    """Internal: a statement of the group hit a unique index; nothing was written."""


@dataclass(frozen=True)
class _Slot:
    """A write of the group, with its plan when one could be made before the
    transaction without reading: on this process's ``tail`` of the run (written
    guarded by it), or for a new run (``tail`` None)."""

    write: BatchWrite
    plan: PlannedWrites | None = None
    tail: RunTail | None = None
    messages: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class _Answer:
    """What the transaction did with one slot.

    ``outcome`` is None when the slot's guard found its log moved on (nothing
    written); ``run`` and ``plan`` are what a written slot was checked against and
    wrote, and ``tail`` the tail it was planned on, if any (for ``TailCache``)."""

    outcome: BatchOutcome | None
    run: Run | None = None
    plan: PlannedWrites | None = None
    tail: RunTail | None = None


class GroupWriter:
    """Writes ``create_batches`` groups for one ``PostgresEvents``.

    Args:
        engine: the world's pool.
        names: the world's tables.
        sql: the compiled record lookups.
        tails: the events' ``TailCache``, read and kept up to date.
        one_by_one: writes a group one ``create_batch`` transaction per write.
    """

    def __init__(
        self,
        engine: Engine,
        names: TableNames,
        sql: LoaderSql,
        tails: TailCache,
        one_by_one: OneByOne,
    ) -> None:
        self._engine = engine
        self._names = names
        self._sql = sql
        self._tails = tails
        self._one_by_one = one_by_one

    def write(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        """One outcome per write; see ``wfkit.worlds.base.Events.create_batches``."""
        run_ids = [write.run_id for write in writes]
        if len(writes) < 2 or len(set(run_ids)) < len(run_ids):
            return self._one_by_one(writes)
        slots = [self._plan_unread(write) for write in writes]
        for run_id in run_ids:
            # Whatever happens next, what this process knew of these runs is
            # re-learnt from what the transaction wrote.
            self._tails.forget(run_id)
        unread = all(slot.plan is not None for slot in slots)
        work = self._unread if unread else self._locked
        try:
            answers = run_transaction(self._engine, lambda session: work(session, slots))
        except _UniqueClash:
            return self._one_by_one(writes)
        except WorldError as error:
            return [error] * len(writes)
        return self._settle(slots, answers)

    def _plan_unread(self, write: BatchWrite) -> _Slot:
        """The slot of ``write``, planned now if that needs no reading."""
        expected = write.expected_last_event_id
        if expected is None:
            if _claimed_keys(write.requests):
                return _Slot(write)
            try:
                messages = message_rows(write.messages)
            except WorldError:
                return _Slot(write)  # refused in its slot by the locking path
            return _Slot(write, plan_new_run(write.run_id, write.requests), messages=messages)
        if write.messages or not qualifies(write.requests):
            return _Slot(write)
        tail = self._tails.get(write.run_id, expected)
        plan = None if tail is None else plan_on_tail(write.run_id, tail, write.requests, expected)
        return _Slot(write) if plan is None else _Slot(write, plan, tail)

    def _unread(self, session: Session, slots: Sequence[_Slot]) -> list[_Answer]:
        """Every slot planned before the transaction: one statement each (a step
        batch's guarded by its tail), in one round trip."""
        order = sorted(range(len(slots)), key=lambda i: slots[i].write.run_id)
        statements: list[Statement] = []
        ends: list[int] = []  # where each slot's statements end, in ``order``
        for i in order:
            write, plan, tail = slots[i].write, slots[i].plan, slots[i].tail
            assert plan is not None
            statements += plan_statements(
                self._names,
                write.run_id,
                plan,
                slots[i].messages,
                guard_last_event_id=None if tail is None else write.expected_last_event_id,
            )
            ends.append(len(statements))
        results = _commit(session, statements)
        answers: list[_Answer] = [_Answer(None)] * len(slots)
        for i, end in zip(order, ends, strict=True):
            plan, tail = slots[i].plan, slots[i].tail
            assert plan is not None
            if tail is None:
                answers[i] = _Answer(plan.results, None, plan)
            elif results[end - 1][0]["written"]:  # a guarded plan is one statement
                answers[i] = _Answer(plan.results, tail.run, plan, tail)
        return answers

    def _locked(self, session: Session, slots: Sequence[_Slot]) -> list[_Answer]:
        """Lock every run and prefetch (round trip 1), plan, write and COMMIT (2)."""
        loader = TransactionLoader(session, self._names, self._sql)
        taken = loader.lock_runs(
            [slot.write.run_id for slot in slots],
            [(slot.write.run_id, slot.write.requests) for slot in slots if slot.tail is None],
            [key for slot in slots for key in _claimed_keys(slot.write.requests)],
        )
        answers: list[_Answer] = []
        statements: list[Statement] = []
        for slot in slots:
            answer, slot_statements = self._plan_locked(loader, slot, taken)
            answers.append(answer)
            statements += slot_statements
        _commit(session, statements)
        return answers

    def _plan_locked(
        self, loader: TransactionLoader, slot: _Slot, taken: set[str]
    ) -> tuple[_Answer, list[Statement]]:
        """One slot's answer and statements, its run locked. ``taken`` holds the
        idempotency keys stored or claimed by an earlier slot (this one's are added
        when it is planned)."""
        write, run_id = slot.write, slot.write.run_id
        tail, plan = slot.tail, slot.plan
        if tail is not None and plan is not None:
            if loader.load_last_event_id(run_id) == tail.last_event_id:
                statements = plan_statements(self._names, run_id, plan)
                return _Answer(plan.results, tail.run, plan, tail), statements
        keys = _claimed_keys(write.requests)
        try:
            for key in keys:
                if key in taken:
                    raise EntityConflictError(f"duplicate: idempotency key {key!r} is taken")
            rows = message_rows(write.messages)
            plan = plan_events(
                loader, run_id, write.requests, expected_last_event_id=write.expected_last_event_id
            )
        except WorldError as error:
            return _Answer(error), []
        taken.update(keys)
        statements = plan_statements(self._names, run_id, plan, rows)
        return _Answer(plan.results, loader.load_run(run_id), plan), statements

    def _settle(self, slots: Sequence[_Slot], answers: Sequence[_Answer]) -> list[BatchOutcome]:
        """Remember the tails the written slots left; write the slots whose guard
        missed again on their own."""
        outcomes: list[BatchOutcome | None] = []
        for slot, answer in zip(slots, answers, strict=True):
            outcomes.append(answer.outcome)
            if answer.plan is not None:
                self._tails.remember(slot.write.run_id, answer.run, answer.plan, answer.tail)
        missed = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if missed:
            redone = self._one_by_one([slots[i].write for i in missed])
            for i, outcome in zip(missed, redone, strict=True):
                outcomes[i] = outcome
        return [outcome for outcome in outcomes if outcome is not None]


def _claimed_keys(requests: Sequence[EventRequest]) -> list[str]:
    """The idempotency keys the ``run_created`` requests of a write claim."""
    keys = []
    for request in requests:
        if request.event_type == "run_created":
            key = request.data.get("idempotency_key")
            if isinstance(key, str):
                keys.append(key)
    return keys


def _commit(session: Session, statements: Sequence[Statement]) -> list[Rows]:
    """Send the group's writes with COMMIT; a unique violation sinks the group
    (``_UniqueClash``) instead of being translated for one write."""
    try:
        return session.commit(statements)
    except psycopg.errors.UniqueViolation as error:
        raise _UniqueClash(str(error)) from error
