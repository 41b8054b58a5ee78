"""Step heartbeats: a step running inline stays claimed for as long as it runs.

A step run inline has no queue message of its own: the worker that started it holds
the run's workflow message, and other workers judge the step by its record. One
that replays the run (its workflow message lapsed, a hook payload woke it, a sweep)
re-queues a ``running`` step it finds stale, so a step that ran longer than its lease
could run twice at once. Worse, a step that blocks the event loop (sync I/O) stops
everything on that loop, the lease keeper included.

So, from the process's heartbeat thread (one per process, idle while no step runs,
and gone with the process: a SIGKILLed worker's claims lapse), ``StepHeartbeats`` *claims* each inline step that has run for
``lease/6``: it enqueues the step's message (idempotency key: the correlation id, as
every step message) invisible for a lease, and keeps pushing that visibility one
lease ahead every ``lease/6``. While the claim lives, a re-queue of the step is a
no-op (same key); if the worker dies, the claim becomes visible one lease later and
another worker runs the step (``executor.handle_step_message``): the takeover.
When the attempt ends with an outcome its claim is deleted; cancelled or dead
without one, its claim is made visible at once (a hand-off). Steps shorter than
``lease/6`` cost a dict insert and removal, nothing else.

Alternatives rejected: touching the step record's ``updated_at`` (records must equal a
fold of the log, so a write without an event breaks ``verify``; a new column is a
schema change); extending the workflow message's lease from the thread (other
messages of the run still trigger replays that re-queue the step).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Final

from wfkit.runtime.engine.messages import step_message
from wfkit.runtime.observability.logs import log_fields
from wfkit.worlds.base import World

__all__ = ["StepHeartbeats"]

log = logging.getLogger("wfkit.heartbeats")


class _Beat:
    """One inline step being kept claimed."""

    __slots__ = (
        "claim_id",
        "claiming",
        "correlation_id",
        "deployment_id",
        "due",
        "ended",
        "owner",
        "run_id",
        "step_name",
    )

    def __init__(
        self,
        run_id: str,
        correlation_id: str,
        step_name: str,
        deployment_id: str,
        owner: StepHeartbeats,
        due: float,
    ) -> None:
        self.run_id = run_id
        self.correlation_id = correlation_id
        self.step_name = step_name
        self.deployment_id = deployment_id
        self.owner = owner
        self.due = due
        """When it is next looked at (``time.monotonic``): claimed, or its claim pushed on."""
        self.claim_id: str | None = None
        """The id of the step's claiming message, once enqueued."""
        self.claiming = False
        """The heartbeat thread is claiming or extending it right now."""
        self.ended = False


class StepHeartbeats:
    """Claims this worker's long inline steps and keeps their claims alive.

    Args:
        world: where the steps' runs live (used from the heartbeat thread too).
        lease_seconds: the worker's lease: a claim stays invisible this long past
            each beat, and beats come every sixth of it.
    """

    def __init__(self, world: World, *, lease_seconds: float) -> None:
        self.world = world
        self.lease_seconds = lease_seconds
        self.every = max(0.02, lease_seconds / 6)
        self._lock = threading.Lock()
        _THREAD.look_every(self.every)

    def started(
        self, run_id: str, correlation_id: str, step_name: str, *, deployment_id: str
    ) -> _Beat:
        """A step started running inline here; pass the result to ``finished``."""
        beat = _Beat(
            run_id, correlation_id, step_name, deployment_id, self, time.monotonic() + self.every
        )
        _THREAD.add(beat)
        return beat

    def finished(self, beat: _Beat, *, recorded: bool) -> None:
        """The step's attempt ended: stop beating, and settle its claim.

        Lock-free for a step never claimed (a handshake as in
        ``wfkit.runtime.replay.watchdog``: this sets ``ended`` then reads ``claiming``,
        the thread sets ``claiming`` then reads ``ended``).

        Args:
            beat: what ``started`` returned.
            recorded: the attempt produced an outcome to record (its claim is deleted);
                False: it was cancelled or died without one, so its claim is made
                visible at once and another worker (or this one) runs the step.
        """
        _THREAD.discard(beat)
        beat.ended = True
        if not beat.claiming and beat.claim_id is None:
            return
        with self._lock:  # a claim being made by the thread finishes first
            claim, beat.claim_id = beat.claim_id, None
        if claim is None:
            return
        try:
            if recorded:
                self.world.queue.ack(claim)
            else:
                self.world.queue.nack(claim, delay_seconds=0.0)
        except Exception as exc:  # a claim left behind only wakes a finished step
            log.warning(
                "could not settle the heartbeat claim of step %s of run %s: %s",
                beat.correlation_id,
                beat.run_id,
                exc,
                extra=log_fields(beat.run_id, beat.correlation_id),
            )

    def beat(self, beat: _Beat) -> None:
        """Claim ``beat``'s step, or push its claim a lease ahead (the heartbeat thread)."""
        with self._lock:
            beat.claiming = True  # before reading ``ended``: see ``finished``
            try:
                if beat.ended:
                    return
                if beat.claim_id is None:
                    beat.claim_id = self._claim(beat)
                else:
                    self.world.queue.extend_lease(beat.claim_id, lease_seconds=self.lease_seconds)
            except Exception as exc:  # a world closed under it, a lost connection
                log.warning(
                    "heartbeat of step %s of run %s failed: %s",
                    beat.correlation_id,
                    beat.run_id,
                    exc,
                    extra=log_fields(beat.run_id, beat.correlation_id),
                )
            finally:
                beat.claiming = False

    def _claim(self, beat: _Beat) -> str:
        message = step_message(
            beat.run_id,
            beat.correlation_id,
            beat.step_name,
            deployment_id=beat.deployment_id,
            delay_seconds=self.lease_seconds,
        )
        claim_id = self.world.queue.enqueue(
            message.queue,
            message.payload,
            delay_seconds=message.delay_seconds,
            idempotency_key=message.idempotency_key,
        )
        # A message of the step that was already queued (its key is taken) is pushed
        # out of sight too: this worker runs the step.
        self.world.queue.extend_lease(claim_id, lease_seconds=self.lease_seconds)
        log.debug(
            "step %s of run %s claimed by its heartbeat (message %s)",
            beat.correlation_id,
            beat.run_id,
            claim_id,
            extra=log_fields(beat.run_id, beat.correlation_id),
        )
        return claim_id


class _HeartbeatThread:
    """The process's one heartbeat thread: started with the first inline step, it
    looks at the running steps every so often (never signalled per step: a step costs
    the hot path a dict insert and removal), and is gone with the process."""

    def __init__(self) -> None:
        self._beats: dict[int, _Beat] = {}
        self._idle = 0.25
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def look_every(self, seconds: float) -> None:
        """Look at least this often (a worker with a short lease is here)."""
        self._idle = min(self._idle, seconds)

    def add(self, beat: _Beat) -> None:
        self._beats[id(beat)] = beat
        if self._thread is None:
            with self._guard:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="wfkit-step-heartbeats", daemon=True
                    )
                    self._thread.start()

    def discard(self, beat: _Beat) -> None:
        self._beats.pop(id(beat), None)

    def forget_after_fork(self) -> None:
        """In a forked child: none of the parent's threads or steps exist here."""
        self.__init__()  # type: ignore[misc]

    def _run(self) -> None:
        while True:
            beats = list(self._beats.values())
            now = time.monotonic()
            for beat in beats:
                if now >= beat.due:  # a step shorter than one interval is never claimed
                    beat.due = now + beat.owner.every
                    beat.owner.beat(beat)
            next_due = min((b.due for b in beats), default=math.inf)
            time.sleep(max(0.005, min(self._idle, next_due - time.monotonic())))


_THREAD: Final = _HeartbeatThread()
os.register_at_fork(after_in_child=_THREAD.forget_after_fork)
