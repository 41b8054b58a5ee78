"""One run's live replay in a worker: its session, what it has seen of the log, its
open waits and the inline steps it is running.

The orchestrator (``wfkit.runtime.engine.orchestrator``) drives a ``RunState``: it
feeds it log events (or provisional ones, see the orchestrator's docstring), asks
it which waits are due and when to wake the run, and collects the outcomes of its
finished inline steps. Nothing here writes to the world.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from wfkit.runtime.engine.messages import workflow_message
from wfkit.runtime.replay.outcome import Outcome
from wfkit.runtime.replay.session import ReplaySession
from wfkit.worlds.base import (
    Event,
    EventRequest,
    QueueMessageRequest,
    Run,
    parse_timestamp,
    utc_now,
)

__all__ = ["MOST_STEPS_WITHOUT_WAIT", "RunState", "placeholder_run"]

log = logging.getLogger("wfkit.orchestrator")

MOST_STEPS_WITHOUT_WAIT = 8
"""Most turns a handler finds steps that ended as they started without letting the
loop run (``RunState.wait_for_news``). Counted, not timed: the same runs take the
same turns, on a busy machine too."""

_RUN_ENDS = frozenset({"run_completed", "run_failed", "run_cancelled"})


def _retried_after(events: Sequence[Event], index: int) -> bool:
    """Whether the ``run_failed`` at ``index`` is followed by a ``run_retried``: then
    it ended one attempt, not the run (``wfkit retry`` reopened it)."""
    if events[index].event_type != "run_failed":
        return False
    return any(e.event_type == "run_retried" for e in events[index + 1 :])


@dataclass(eq=False)
class RunState:
    """One run's live replay in this worker."""

    run: Run
    """The run record (a placeholder until the first full replay reads it)."""
    session: ReplaySession | None = None
    """The live replay; None before the first full replay of this run here."""
    synced_id: str | None = None
    """The id of the last *logged* event the session was fed (provisional events
    do not move it): the next write must come right after it."""
    outcome: Outcome | None = None
    """What the session reported after its last feed; None before the first."""
    starting: EventRequest | None = None
    """The ``run_started`` a run not started before was shown provisionally (at its
    full replay here), stamped with its time: the run's next write carries it first."""
    open_waits: dict[str, datetime] = field(default_factory=dict)
    """``resume_at`` of each wait created and not completed, by correlation id."""
    wait_created_at: dict[str, datetime] = field(default_factory=dict)
    """When each open wait was created (its ``wfkit.wait`` span starts there)."""
    terminal: bool = False
    """The run ended (in the log, or by this handler's last write): stop driving it."""
    log_may_have_news: bool = False
    """A workflow message arrived while a handler was driving this run: the log may
    hold events (a hook payload, a cancellation) the session has not seen."""
    news: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when an inline step finishes or a message nudges the run; the handler
    sleeps on it when it has nothing to write."""
    inline_tasks: dict[str, asyncio.Task[EventRequest]] = field(default_factory=dict)
    """The steps running inline in this worker, by correlation id; each task returns
    the event request its attempt asks to record."""
    finished_inline: list[str] = field(default_factory=list)
    """Correlation ids of inline tasks that finished and were not collected yet."""
    steps_without_wait: int = 0
    """Turns since the handler last let the loop run while looking for news."""
    step_names: dict[str, str] = field(default_factory=dict)
    """Step function ids of the steps this worker created, by correlation id (to
    address their step messages without reading the step record)."""

    def close(self) -> None:
        """Cancel the run's inline steps and close its replay session."""
        self.cancel_inline()
        if self.session is None:
            return
        try:
            self.session.close()
        except Exception:  # closing a broken session must not hide the real error
            log.debug("closing the replay session of %s failed", self.run.run_id, exc_info=True)

    def cancel_inline(self) -> None:
        """Cancel the run's inline steps and forget them."""
        for task in self.inline_tasks.values():
            task.cancel()
        self.inline_tasks.clear()

    # --- feeding ----------------------------------------------------------------------

    def feed(
        self,
        events: Sequence[Event],
        *,
        provisional: bool = False,
        provisional_after: Sequence[Event] = (),
    ) -> None:
        """Feed events to the session, in order, tracking open waits.

        A run-ending event marks the run terminal and stops there (the session is
        not fed it: there is nothing left to replay).

        Args:
            events: the next events of the log, or (``provisional=True``) events
                not written yet that the caller is about to append with these
                very timestamps.
            provisional: the events are not in the log yet, so ``synced_id`` stays
                where it is and the next write still goes right after it.
            provisional_after: events not written yet, as with ``provisional``,
                fed right after ``events`` in the same session feed (one feed where
                two would give the session the same events in the same order:
                a full replay is fed them all at once too); ``synced_id`` moves
                to the last of ``events`` only.

        Raises:
            RuntimeError: no session yet (the run was never replayed here).
        """
        logged = events
        if provisional_after:
            events = [*events, *provisional_after]
        if not events:
            return
        for index, event in enumerate(events):
            kind = event.event_type
            if kind in _RUN_ENDS and not _retried_after(events, index):
                self.terminal = True
                return
            if kind == "wait_created" and event.correlation_id:
                self.open_waits[event.correlation_id] = parse_timestamp(event.data.get("resume_at"))
                self.wait_created_at[event.correlation_id] = event.created_at
            elif kind == "wait_completed" and event.correlation_id:
                self.open_waits.pop(event.correlation_id, None)
                self.wait_created_at.pop(event.correlation_id, None)
        if self.session is None:
            raise RuntimeError(f"run {self.run.run_id}: no replay session to feed")
        self.outcome = self.session.feed(list(events))
        if logged and not provisional:
            self.synced_id = logged[-1].event_id

    # --- waits ------------------------------------------------------------------------

    def due_waits(self) -> list[EventRequest]:
        """``wait_completed`` requests for the open waits that are due, earliest first."""
        if not self.open_waits:
            return []
        now = utc_now()
        return [
            EventRequest(event_type="wait_completed", correlation_id=cid)
            for cid, resume_at in sorted(self.open_waits.items(), key=lambda kv: kv[1])
            if resume_at <= now
        ]

    def wait_times(
        self, requests: Sequence[EventRequest]
    ) -> list[tuple[str, datetime | None, datetime]]:
        """``(correlation id, created_at, resume_at)`` of the open waits that ``requests``
        (``due_waits``' answer) complete."""
        return [
            (cid, self.wait_created_at.get(cid), self.open_waits[cid])
            for request in requests
            if (cid := request.correlation_id) is not None and cid in self.open_waits
        ]

    def wait_is_near(self, inline_wait_seconds: float) -> bool:
        """Whether the earliest open wait is due soon enough to wait for it here
        (cheaper than a queue round trip, and covers a wake-up delivered a little early)."""
        if not self.open_waits:
            return False
        left = (min(self.open_waits.values()) - utc_now()).total_seconds()
        # Never below 50 ms: a wake-up message delivered a hair early must not be
        # acked with its wait still open (its re-enqueue would dedupe against itself).
        return left <= max(inline_wait_seconds, 0.05)

    def wake_message(self, resume_times: Sequence[datetime]) -> QueueMessageRequest:
        """A delayed workflow message for the earliest of ``resume_times`` and the
        open waits."""
        # Keyed by run and due time: a pending wake-up for the same moment is reused
        # (the queue dedupes keys of messages not yet acked).
        due = min([*resume_times, *self.open_waits.values()])
        key = f"wake:{self.run.run_id}:{due.isoformat()}"
        delay = (due - utc_now()).total_seconds()
        return workflow_message(
            self.run.workflow_name,
            self.run.run_id,
            deployment_id=self.run.deployment_id,
            delay_seconds=delay,
            idempotency_key=key,
        )

    def takes_finished_at_once(self) -> bool:
        """Whether a handler that just wrote may take its finished inline steps'
        outcomes at once, without a turn through ``wait_for_news``: some ended as they
        started (``inline_steps``: eager start), no message nudged the run, no wait
        is open (a due one is completed first), and this is not the turn on which
        ``wait_for_news`` lets the loop run (counted as it counts, so a run's
        handler lets the loop run as often as before)."""
        if not self.finished_inline or self.log_may_have_news or self.open_waits:
            return False
        if self.steps_without_wait + 1 >= MOST_STEPS_WITHOUT_WAIT:
            return False  # left to ``wait_for_news``, which lets the loop run now
        self.steps_without_wait += 1
        return True

    async def wait_for_news(self) -> None:
        """Sleep until an inline step finishes, a message nudges the run, or the
        earliest open wait is due."""
        if self.log_may_have_news:
            return
        if self.finished_inline:
            # Steps that ended as they started (``inline_steps``: eager start) leave
            # nothing to wait for. A handler that keeps finding such steps (and writes
            # without waiting: a run driven alone) lets the loop run every so often,
            # so that one long run of them cannot hold the worker (leases, other runs).
            self.steps_without_wait += 1
            if self.steps_without_wait >= MOST_STEPS_WITHOUT_WAIT:
                self.steps_without_wait = 0
                await asyncio.sleep(0)
            return
        self.steps_without_wait = 0
        self.news.clear()
        if not self.open_waits:
            await self.news.wait()  # (no timeout block to build: the common case)
            return
        timeout = max(0.0, (min(self.open_waits.values()) - utc_now()).total_seconds())
        try:
            async with asyncio.timeout(timeout):
                await self.news.wait()
        except TimeoutError:
            pass


def placeholder_run(run_id: str) -> Run:
    """A stand-in record for a run not read from the world yet."""
    now = utc_now()
    return Run(run_id=run_id, workflow_name="", status="pending", created_at=now, updated_at=now)
