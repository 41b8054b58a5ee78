"""Test helpers for replay: hand-built event logs and a tiny simulated orchestrator.

``Log`` builds ``Event`` records with ids and increasing timestamps. ``Simulator``
plays the orchestrator against a ``ReplaySession`` on a virtual clock: it writes
the creation events a suspension asks for (hooks, disposals, steps, waits), runs
steps (each takes a chosen virtual duration), completes waits when due and
delivers scripted hook payloads, feeding every new event back to the session.
Its log is then replayed from scratch to check both paths agree.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from wfkit.runtime.replay.session import (
    Completed,
    Failed,
    Outcome,
    ReplaySession,
    Suspended,
    replay,
)
from wfkit.runtime.serialization import deserialize_call, serialize, serialize_error
from wfkit.worlds.base import Event, EventType, Run

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
RUN_ID = "wrun_01TESTRUN0000000000000000"


def make_run(run_id: str = RUN_ID, start: datetime = START) -> Run:
    """A running run record started at ``start``."""
    return Run(
        run_id=run_id,
        workflow_name="workflow//./t//wf",
        status="running",
        created_at=start - timedelta(milliseconds=5),
        updated_at=start,
        started_at=start,
    )


class Log:
    """An event log under construction: ``add`` appends an event at the current time."""

    def __init__(self, run_id: str = RUN_ID, start: datetime = START) -> None:
        self.run_id = run_id
        self.now = start - timedelta(milliseconds=5)
        self.events: list[Event] = []
        self._ids = itertools.count(1)
        self.add("run_created", data={"workflow_name": "workflow//./t//wf"})
        self.now = start
        self.add("run_started")

    def add(
        self,
        event_type: EventType,
        correlation_id: str | None = None,
        data: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> Event:
        if at is not None:
            self.now = max(self.now, at)
        event = Event(
            event_id=f"evnt_{next(self._ids):06d}",
            run_id=self.run_id,
            event_type=event_type,
            correlation_id=correlation_id,
            data=data or {},
            created_at=self.now,
        )
        self.events.append(event)
        return event

    def tick(self, seconds: float = 0.001) -> None:
        self.now += timedelta(seconds=seconds)


def comparable(outcome: Outcome) -> Any:
    """An outcome as plain data (exceptions by type and message)."""
    if isinstance(outcome, Failed):
        return ("failed", outcome.code, type(outcome.error).__name__, str(outcome.error))
    if isinstance(outcome, Completed):
        return ("completed", outcome.value)
    return outcome


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    key: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


StepFn = Callable[..., Any]


class Simulator:
    """Plays the orchestrator for one run on a virtual clock.

    Args:
        workflow: the workflow function.
        steps: step id -> plain function run with the call's args (raise to fail).
        durations: step id -> function of the args giving the step's seconds.
        hook_payloads: ``(seconds after start, token, payload)`` resumes.
        taken_tokens: tokens held by another run (``hook_conflict``).
    """

    def __init__(
        self,
        workflow: Callable[..., Any],
        *,
        args: tuple[Any, ...] = (),
        steps: dict[str, StepFn] | None = None,
        durations: dict[str, Callable[..., float]] | None = None,
        hook_payloads: Sequence[tuple[float, str, Any]] = (),
        taken_tokens: dict[str, str] | None = None,
    ) -> None:
        self.workflow = workflow
        self.args = args
        self.steps = steps or {}
        self.durations = durations or {}
        self.taken_tokens = taken_tokens or {}
        self.log = Log()
        self.run = make_run()
        self.outcomes: list[Outcome] = []
        self.feeds: list[int] = []
        self.restarts = 0
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._hooks_by_token: dict[str, str] = {}
        self._scripted = list(hook_payloads)

    def _schedule(self, at: datetime, kind: str, key: str, payload: Any = None) -> None:
        heapq.heappush(self._due, _Due(at, next(self._seq), kind, key, payload))

    def play(
        self, max_rounds: int = 10_000, *, restart: Callable[[int], bool] | None = None
    ) -> Outcome:
        """Run the workflow to its end (or until nothing more can happen).

        Args:
            max_rounds: a bound on feeds, so a bug cannot hang the test.
            restart: asked after each feed with the round number (from 1): True
                discards the session and what it reported, and a fresh session replays
                the whole log instead, as after a worker died between replaying and
                writing (every round: a worker with its replay cache off).
        """
        session = ReplaySession(self.workflow, self.run, args=self.args, kwargs={})
        for at, token, payload in self._scripted:
            self._schedule(START + timedelta(seconds=at), "hook", token, payload)
        fed = 0
        try:
            for round_number in range(1, max_rounds + 1):
                new = self.log.events[fed:]
                fed = len(self.log.events)
                outcome = session.feed(new)
                if restart is not None and restart(round_number):
                    session.close()
                    session = ReplaySession(self.workflow, self.run, args=self.args, kwargs={})
                    outcome = session.feed(self.log.events)
                    self.restarts += 1
                self.outcomes.append(outcome)
                self.feeds.append(fed)
                if not isinstance(outcome, Suspended):
                    for patch_id in outcome.patches:  # written before the run's end
                        self.log.add("patch_marked", data={"patch_id": patch_id})
                    return outcome
                if self._write_creations(outcome):
                    continue
                if not self._advance():
                    return outcome
            raise AssertionError("the simulation did not finish")
        finally:
            session.close()

    def _write_creations(self, s: Suspended) -> bool:
        log = self.log
        for patch_id in s.patches:  # first, right after the events the session saw
            log.add("patch_marked", data={"patch_id": patch_id})
        for h in s.hooks:
            holder = self.taken_tokens.get(h.token)
            if holder is not None:
                log.add(
                    "hook_conflict",
                    h.correlation_id,
                    {"token": h.token, "conflicting_run_id": holder},
                )
            else:
                log.add(
                    "hook_created",
                    h.correlation_id,
                    {
                        "token": h.token,
                        "metadata": h.metadata,
                        "is_webhook": h.is_webhook,
                        "respond_with": h.respond_with,
                    },
                )
                self._hooks_by_token[h.token] = h.correlation_id
        for cid in s.disposals:
            log.add("hook_disposed", cid)
            self._hooks_by_token = {t: c for t, c in self._hooks_by_token.items() if c != cid}
        for step in s.steps:
            log.add(
                "step_created",
                step.correlation_id,
                {"step_name": step.step_id, "input": step.input},
            )
            args, kwargs, _, _ = deserialize_call(step.input)
            duration = self.durations.get(step.step_id, lambda *a, **k: 1.0)(*args, **kwargs)
            self._schedule(
                log.now + timedelta(seconds=duration),
                "step",
                step.correlation_id,
                (step.step_id, args, kwargs),
            )
        for wait in s.waits:
            log.add("wait_created", wait.correlation_id, {"resume_at": wait.resume_at.isoformat()})
            self._schedule(wait.resume_at, "wait", wait.correlation_id)
        return bool(s.patches or s.hooks or s.disposals or s.steps or s.waits)

    def _advance(self) -> bool:
        """Write the next due thing(s) at the same virtual instant; False when nothing is due."""
        if not self._due:
            return False
        first = heapq.heappop(self._due)
        batch = [first]
        while self._due and self._due[0].at == first.at:
            batch.append(heapq.heappop(self._due))
        for due in batch:
            self._write_due(due)
        return True

    def _write_due(self, due: _Due) -> None:
        log = self.log
        log.now = max(log.now, due.at)
        if due.kind == "step":
            step_id, args, kwargs = due.payload
            log.add("step_started", due.key)
            try:
                result = self.steps[step_id](*args, **kwargs)
            except Exception as exc:
                log.add("step_failed", due.key, {"error": serialize_error(exc)})
            else:
                log.add("step_completed", due.key, {"result": serialize(result)})
        elif due.kind == "wait":
            log.add("wait_completed", due.key)
        else:
            cid = self._hooks_by_token.get(due.key)
            if cid is not None:
                log.add("hook_received", cid, {"payload": serialize(due.payload)})


def full_replay(
    workflow: Callable[..., Any], events: Sequence[Event], args: tuple[Any, ...] = ()
) -> Outcome:
    """A fresh session fed the whole log."""
    return replay(workflow, make_run(), events, args=args, kwargs={})


def incremental(
    workflow: Callable[..., Any], events: Sequence[Event], args: tuple[Any, ...] = ()
) -> list[Outcome]:
    """One session fed one event at a time; the outcome after each event."""
    session = ReplaySession(workflow, make_run(), args=args, kwargs={})
    try:
        return [session.feed([event]) for event in events]
    finally:
        session.close()


def assert_paths_agree(
    workflow: Callable[..., Any], sim: Simulator, args: tuple[Any, ...] = ()
) -> None:
    """The live outcome equals a full replay, event-by-event feeding equals both, and
    every outcome the live session reported equals a fresh replay of that log prefix."""
    final = comparable(sim.outcomes[-1])
    assert comparable(full_replay(workflow, sim.log.events, args)) == final
    assert comparable(incremental(workflow, sim.log.events, args)[-1]) == final
    for fed, outcome in zip(sim.feeds, sim.outcomes, strict=True):
        assert comparable(full_replay(workflow, sim.log.events[:fed], args)) == comparable(outcome)
