"""What this process knows of a run's records as of the tail of its log.

A worker appending a sequential run's steps writes one batch per step, each with
``expected_last_event_id`` = the id of the batch before it. Every change to a
run's or a step's record comes with an event of that run, so if the run's log
still ends at that id, the records are exactly what this process left them at
its last write: the lifecycle rules can be checked against them (``RunTail``)
without reading the database, provided the write itself is conditional on the
log still ending there. Each SQL world supplies that condition:

- Postgres writes the batch as one statement guarded by ``last_event_id``, its
  own transaction, in one round trip (``worlds.postgres.writes.plan_statements(...,
  guard_last_event_id=...)``);
- the local world checks, under its write lock, the last event id of every run
  of a group planned before the lock (``worlds.local.events``).

Either way the run's whole row is confirmed current, so a batch that starts or
ends the run (``RUN_EVENTS``) may be planned on the tail too; Postgres's guard
writes the run's changed row itself. Ending a run releases its active hooks and
waiting waits: the local world writes that release under its lock; Postgres's
one guarded statement cannot, so it ends on the tail only a run the tail knows
holds none (``RunTail.releases_nothing``), and the locking path ends the others.

A tail is started by a write (a run this process created or wrote the ordinary
way) or by a read of the run's whole log (``TailCache.seed``): a world's records
are by its invariant the fold of the log (``fold_events``; ``wfkit verify``
checks exactly that), so the fold of a whole log read at once is the records as
of its last event, which the next write's guard confirms. That is a worker's
first message of a run: it replays the whole log, then writes ``run_started``
and the first step, planned on the seeded tail.

Any doubt — another writer moved the log on, a record this cache does not hold,
a refused transition — goes the ordinary way (lock, read, plan, write), which
gives the authoritative answer.

A batch that creates its run (``start``'s ``run_created``, with its queue
message) needs no reading either: nothing of a run that does not exist yet can
be found, and if the run does exist after all, the run row's INSERT hits the
primary key and refuses the batch as a duplicate, which is the answer the
locking path gives (``plan_new_run``). Postgres writes it by one statement, in
one round trip.

Only batches of step events and of the run's start and ending qualify for the
tail: they read the run and the steps they name, and write events, steps, the
run's record and its release. Hooks and waits are left out on purpose: a hook
token is unique across runs, so another run's write can change the answer
without touching this run's log.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from wfkit.worlds.base import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    CorruptedLogError,
    Event,
    EventRequest,
    EventType,
    Hook,
    PlannedWrites,
    Run,
    Step,
    Wait,
    WorldError,
    fold_events,
    plan_events,
)

__all__ = [
    "RUN_EVENTS",
    "NewRunLoader",
    "RunTail",
    "TailCache",
    "TailLoader",
    "TailMiss",
    "plan_new_run",
    "plan_on_tail",
    "qualifies",
]

_MAX_SEEDED_EVENTS = 64
"""The longest log ``TailCache.seed`` folds (a worker's first message of a run
reads a short log; folding a long one would cost more than the read it saves)."""

_MAX_RUNS = 4096
"""Runs remembered per world object; older ones are forgotten (a miss costs one
ordinary transaction)."""


class TailMiss(Exception):
    """The cache cannot answer a lookup: take the ordinary path."""


@dataclass
class RunTail:
    """A run's full record and its unfinished steps this process knows of, as of
    ``last_event_id``.

    ``releases_nothing``: the run holds no active hook and no waiting wait, known
    from the fold the tail was seeded from or the run's creation, and every batch
    remembered since (a batch creating or changing a hook or wait clears it);
    False when unknown. Hooks and waits of a run change only with events of its
    log, so the guard on ``last_event_id`` confirms this too."""

    last_event_id: str
    run: Run
    steps: dict[str, Step] = field(default_factory=dict)
    releases_nothing: bool = False


RUN_EVENTS = frozenset({"run_started", "run_completed", "run_failed"})
"""Run events a tail may plan: the run's start and its ending."""


def qualifies(requests: Sequence[EventRequest]) -> bool:
    """Whether a batch may take the cached path: step events and ``RUN_EVENTS`` only."""
    return bool(requests) and all(
        r.event_type.startswith("step_") or r.event_type in RUN_EVENTS for r in requests
    )


def plan_on_tail(
    run_id: str,
    tail: RunTail,
    requests: Sequence[EventRequest],
    expected_last_event_id: str,
    *,
    writes_release: bool = False,
) -> PlannedWrites | None:
    """The plan of a batch checked against ``tail`` alone; None when the batch must
    be checked against the database (a record the tail lacks, a refusal the
    database must confirm, or, without ``writes_release``, an ending that may
    release hooks or waits).

    An ending whose tail ``releases_nothing`` has its release dropped from the
    plan: it would update no row (the run holds no active hook, no waiting wait),
    so the plan writes exactly what the locking path writes.

    Args:
        run_id: the batch's run.
        tail: what this process knows of the run as of ``expected_last_event_id``.
        requests: the batch.
        expected_last_event_id: the batch's expected last event (``tail``'s).
        writes_release: the world writes a plan's release of the run's hooks and
            waits along with it (the local world, under its lock).
    """
    try:
        plan = plan_events(
            TailLoader(run_id, tail, requests),
            run_id,
            requests,
            expected_last_event_id=expected_last_event_id,
        )
    except (TailMiss, WorldError):
        return None
    if tail.releases_nothing:
        plan.released_runs.clear()
    return None if plan.released_runs and not writes_release else plan


class TailCache:
    """``RunTail``s by run id, most recently written last; thread-safe."""

    def __init__(self) -> None:
        self._tails: OrderedDict[str, RunTail] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, last_event_id: str | None) -> RunTail | None:
        """The run's tail if this process last saw its log end at ``last_event_id``."""
        with self._lock:
            tail = self._tails.get(run_id)
        return tail if tail is not None and tail.last_event_id == last_event_id else None

    def forget(self, run_id: str) -> None:
        """Drop what is known of ``run_id`` (after a refused or uncertain write)."""
        with self._lock:
            self._tails.pop(run_id, None)

    def remember(
        self, run_id: str, run: Run | None, plan: PlannedWrites, base: RunTail | None
    ) -> None:
        """Record the state a committed batch of the run left behind.

        Any batch of a live run counts, not only step batches: after the worker's
        ``run_started`` batch its next step batch takes the cached path too. A
        run that finished (or a batch touching another run) is forgotten.

        Args:
            run_id: the batch's run.
            run: the run record the batch was checked against (None: forget); the
                batch's own change to it, if any, is taken from ``plan``.
            plan: the committed writes.
            base: the tail the batch was planned on, if it took the cached path.
        """
        after = plan.new_runs.get(run_id) or plan.changed_runs.get(run_id) or run
        others = {*plan.new_runs, *plan.changed_runs} - {run_id}
        if (
            after is None
            or not plan.events
            or others
            or plan.released_runs
            or after.status in RUN_TERMINAL
        ):
            self.forget(run_id)
            return
        steps = dict(base.steps) if base is not None else {}
        for (step_run_id, step_id), step in (*plan.new_steps.items(), *plan.changed_steps.items()):
            if step_run_id == run_id:
                steps[step_id] = step
        # What the run held before: nothing if the batch created it, else what
        # the base knew (unknown without one).
        held_nothing = run_id in plan.new_runs or (base is not None and base.releases_nothing)
        touches_hooks_or_waits = bool(
            plan.new_hooks or plan.changed_hooks or plan.new_waits or plan.changed_waits
        )
        self._put(
            run_id,
            RunTail(
                last_event_id=plan.events[-1].event_id,
                run=after,
                steps={i: s for i, s in steps.items() if s.status not in STEP_TERMINAL},
                releases_nothing=held_nothing and not touches_hooks_or_waits,
            ),
        )

    def seed(self, run_id: str, events: Sequence[Event], limit: int | None) -> None:
        """Learn the run's records from ``events``, its log from the start read in
        one statement with ``limit`` (the whole log unless the limit cut it; module
        docstring): the fold of a world's whole log is its records (the
        invariant ``wfkit verify`` checks), as of the log's last event, which the
        guard of a write planned on them confirms. A log longer than
        ``_MAX_SEEDED_EVENTS``, one the rules cannot fold, or a run it leaves
        finished teaches nothing."""
        cut = limit is not None and len(events) >= limit
        if not events or cut or len(events) > _MAX_SEEDED_EVENTS:
            return
        if self.get(run_id, events[-1].event_id) is not None:
            return  # known already, from this process's own last write
        try:
            folded = fold_events(events)
        except CorruptedLogError:
            return
        run = folded.runs.get(run_id)
        if run is None or run.status in RUN_TERMINAL or len(folded.runs) > 1:
            return
        self._put(
            run_id,
            RunTail(
                last_event_id=events[-1].event_id,
                run=run,
                steps={
                    step.step_id: step
                    for step in folded.steps.values()
                    if step.status not in STEP_TERMINAL
                },
                releases_nothing=all(h.status != "active" for h in folded.hooks.values())
                and all(w.status != "waiting" for w in folded.waits.values()),
            ),
        )

    def _put(self, run_id: str, tail: RunTail) -> None:
        with self._lock:
            self._tails[run_id] = tail
            self._tails.move_to_end(run_id)
            while len(self._tails) > _MAX_RUNS:
                self._tails.popitem(last=False)


class TailLoader:
    """A ``wfkit.worlds.base.RecordLoader`` answering from one ``RunTail``.

    A step the batch creates and the cache does not hold is taken not to exist:
    if it does, the guarded INSERT's unique violation sends the batch the
    ordinary way. Every other lookup the cache cannot answer raises ``TailMiss``.
    """

    def __init__(self, run_id: str, tail: RunTail, requests: Sequence[EventRequest]) -> None:
        self._run_id = run_id
        self._tail = tail
        self._created = {r.correlation_id for r in requests if r.event_type == "step_created"}

    def load_run(self, run_id: str) -> Run | None:
        if run_id != self._run_id:
            raise TailMiss(run_id)
        return self._tail.run

    def load_last_event_id(self, run_id: str) -> str | None:
        if run_id != self._run_id:
            raise TailMiss(run_id)
        return self._tail.last_event_id

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        if run_id == self._run_id:
            if step_id in self._tail.steps:
                return self._tail.steps[step_id]
            if step_id in self._created:
                return None
        raise TailMiss(step_id)

    def load_hook(self, hook_id: str) -> Hook | None:
        raise TailMiss(hook_id)

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        raise TailMiss(token)

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        raise TailMiss(wait_id)

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        raise TailMiss(run_id)

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        raise TailMiss(event_type)


class NewRunLoader:
    """A ``wfkit.worlds.base.RecordLoader`` for a batch that creates its run: the
    run and its steps, hooks and waits do not exist yet; a lookup beyond the run
    (a hook token, another run) raises ``TailMiss``."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id

    def _own(self, run_id: str) -> None:
        if run_id != self._run_id:
            raise TailMiss(run_id)

    def load_run(self, run_id: str) -> Run | None:
        self._own(run_id)
        return None

    def load_last_event_id(self, run_id: str) -> str | None:
        self._own(run_id)
        return None

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        self._own(run_id)
        return None

    def load_hook(self, hook_id: str) -> Hook | None:
        raise TailMiss(hook_id)  # hook ids are global: another run may hold it

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        raise TailMiss(token)

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        self._own(run_id)
        return None

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        self._own(run_id)
        return []

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        self._own(run_id)
        return None


def plan_new_run(run_id: str, requests: Sequence[EventRequest]) -> PlannedWrites | None:
    """The plan of a batch that starts with its run's ``run_created``, checked
    without reading the database; None when it must be checked against it (a
    lookup beyond the run, or a refusal, which the locking path confirms)."""
    if not requests or requests[0].event_type != "run_created":
        return None
    try:
        return plan_events(NewRunLoader(run_id), run_id, requests)
    except (TailMiss, WorldError):
        return None
