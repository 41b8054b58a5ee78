"""One run's live replay in a worker: its session, what it has seen of the log, its
open waits and the inline steps it is running.

The orchestrator (``wfkit.runtime.engine.orchestrator``) drives a ``RunState``: it feeds it log
events (or provisional ones, see the orchestrator's docstring), asks it which
waits are due and when to wake the run, and collects the outcomes of its finished
inline steps. Nothing here writes to the world.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wfkit.runtime.engine.executor import workflow_message
from wfkit.worlds.base import (
    Event,
    EventRequest,
    QueueMessageRequest,
    Run,
    parse_timestamp,
    utc_now,
)

__all__ = ["NoSession", "RunState", "correlation_id_of", "placeholder_run"]

log = logging.getLogger("wfkit.orchestrator")

_RUN_ENDS = frozenset({"run_completed", "run_failed", "run_cancelled"})


@dataclass(eq=False)
class RunState:
    """One run's live replay in this worker."""

    run: Run
    session: Any
    synced_id: str | None = None
    outcome: Any = None
    open_waits: dict[str, datetime] = field(default_factory=dict)
    terminal: bool = False
    poked: bool = False
    signal: asyncio.Event = field(default_factory=asyncio.Event)
    inline: dict[str, asyncio.Task[EventRequest]] = field(default_factory=dict)
    step_names: dict[str, str] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Cancel the run's inline steps and close its replay session."""
        self.cancel_inline()
        try:
            self.session.close()
        except Exception:  # closing a broken session must not hide the real error
            log.debug("closing the replay session of %s failed", self.run.run_id, exc_info=True)

    def cancel_inline(self) -> None:
        """Cancel the run's inline steps and forget them."""
        for task in self.inline.values():
            task.cancel()
        self.inline.clear()

    # --- feeding ----------------------------------------------------------------------

    def feed(self, events: Sequence[Event], *, real: bool = True) -> None:
        """Feed log events (or provisional ones, ``real=False``) to the session, in
        order, tracking open waits; a run-ending event marks the run terminal and
        stops there."""
        if not events:
            return
        for event in events:
            kind = event.event_type
            if kind in _RUN_ENDS:
                self.terminal = True
                return
            if kind == "wait_created" and event.correlation_id:
                self.open_waits[event.correlation_id] = parse_timestamp(event.data.get("resume_at"))
            elif kind == "wait_completed" and event.correlation_id:
                self.open_waits.pop(event.correlation_id, None)
        self.outcome = self.session.feed(list(events))
        if real:
            self.synced_id = events[-1].event_id

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
            self.run.workflow_name, self.run.run_id, delay_seconds=delay, idempotency_key=key
        )

    async def wait_for_news(self) -> None:
        """Sleep until an inline step finishes, a message nudges the run, or the
        earliest open wait is due."""
        if self.finished or self.poked:
            return
        self.signal.clear()
        timeout = None
        if self.open_waits:
            timeout = max(0.0, (min(self.open_waits.values()) - utc_now()).total_seconds())
        try:
            async with asyncio.timeout(timeout):
                await self.signal.wait()
        except TimeoutError:
            pass


def correlation_id_of(item: Any) -> str:
    """The correlation id of a pending call (an object or a ``(cid, name)`` tuple)."""
    if isinstance(item, tuple):
        return str(item[0])
    return str(getattr(item, "correlation_id", item))


class NoSession:
    """The session of a run whose replay has not started yet."""

    def feed(self, events: Sequence[Event]) -> Any:
        raise RuntimeError("no replay session")

    def close(self) -> None:
        pass


def placeholder_run(run_id: str) -> Run:
    """A stand-in record for a run not read from the world yet."""
    now = utc_now()
    return Run(run_id=run_id, workflow_name="", status="pending", created_at=now, updated_at=now)
