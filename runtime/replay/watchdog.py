"""The feed deadline: a workflow that never yields to the replay loop fails its run
instead of hanging the worker that feeds it.

A feed runs workflow code synchronously on the worker's thread: each event is
delivered and the deterministic loop runs until it is idle. A workflow that never
goes idle -- ``while True: pass``, or ``while True: await asyncio.sleep(0)`` (the
loop always has a ready callback) -- would hold that thread for ever: the worker
stops serving every other run and its leases lapse. Temporal's deadlock detector
is the anchor: a workflow task that does not yield within 2 s fails.

How: a watched session owns a ``FeedTurn``, registered with the process's
``FeedWatchdog``; ``FeedWatchdog.feed`` *arms* it for the calling thread and the
session *ticks* it once per event delivered, so the bound is on one turn (one event and the
loop run it causes), never on the length of a whole replay: a 10,000-step full
replay ticks 10,000 times. One daemon thread per process (``FeedWatchdog``) looks
at the armed turns a few times per deadline; a turn whose tick count has not moved
for the whole deadline is stuck. The watchdog reads where from the stuck thread's
frame (``sys._current_frames()``: the innermost user frame inside the replay loop,
sampled a few times, because a ``sleep(0)`` spinner is mostly inside asyncio), then
raises ``FeedStuck`` in that thread with ``PyThreadState_SetAsyncExc``: it arrives
at the thread's next bytecode, in the user's loop or in the replay loop, and the
session turns it into a failed run (``WorkflowDeadlockError``, naming the workflow
and that ``file:line``). Code that swallows a ``BaseException`` in its loop gets it
again after another deadline.

The hot path pays a few attribute writes and one lock round trip per feed, and an
integer increment per event (about a microsecond per step, against hundreds). Disarming clears an exception the watchdog may have raised
just as the turn ended, and the watchdog never raises into a thread whose current
frame is the guard itself, so ``FeedStuck`` never escapes a feed.

Alternatives rejected:

- *Cancelling the workflow task* (``task.cancel()`` from another thread, as
  ``asyncio.timeout`` does): cooperative, so a ``while True: pass`` never sees it.
- *``signal.setitimer`` + a handler that raises*: signals reach only the main
  thread, and a worker may feed from another (``asyncio.to_thread``, tests).
- *Running each feed in a thread or subprocess with a timeout*: a thread hop per
  step (the hot path is one commit per step), and a stuck thread still cannot be
  stopped from outside.
- *A ``sys.settrace`` / ``sys.monitoring`` budget*: slows every line of workflow
  code, on every replay.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Final, TypeVar

from wfkit.runtime.replay.calls import NOT_USER_CODE, CallSite
from wfkit.runtime.replay.divergence import RunLabel
from wfkit.runtime.replay.loop import DeterministicEventLoop
from wfkit.worlds.base import Event

__all__ = ["WATCHDOG", "FeedStuck", "FeedTurn", "FeedWatchdog", "stuck_message"]

T = TypeVar("T")

_SAMPLES: Final = 40
"""Frames the watchdog reads (1 ms apart) to find the user's line of a stuck turn."""

_LOOP_RUN: Final = DeterministicEventLoop.run_until_idle.__code__
"""Where a feed runs workflow code: the stuck line is looked for inside it."""


class FeedStuck(BaseException):
    """Internal: raised asynchronously into a feed whose turn ran over its deadline.

    A ``BaseException`` so that ``except Exception`` in the stuck loop does not
    swallow it; ``FeedWatchdog.feed`` catches it."""


class FeedTurn:
    """One session's watch: its deadline, the thread feeding it and its progress.

    Attributes:
        deadline: seconds a turn may run without a tick.
        ticks: bumped by the feed once per event delivered (and once per feed).
        fired: the watchdog raised ``FeedStuck`` into the feeding thread.
        stuck_at: the user's line the turn was stuck on, when the watchdog could tell.
    """

    __slots__ = (
        "__weakref__",
        "armed",
        "claimed",
        "deadline",
        "fired",
        "seen_since",
        "seen_ticks",
        "stuck_at",
        "thread_id",
        "ticks",
    )

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.thread_id = 0
        self.ticks = 0
        self.armed = False
        self.claimed = False
        self.fired = False
        self.stuck_at: CallSite | None = None
        self.seen_ticks = -1
        self.seen_since = 0.0


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise ``exception`` in a thread at its next bytecode (None: clear a pending one)."""
    target = ctypes.py_object(exception) if exception is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


def _user_frame_inside(frame: FrameType | None) -> CallSite | None:
    """The innermost user frame (not wfkit's, not asyncio's) between ``frame`` and the
    replay loop's frame; None when there is none at this instant."""
    skip = NOT_USER_CODE
    while frame is not None and frame.f_code is not _LOOP_RUN:
        code = frame.f_code
        if not code.co_filename.startswith(skip):
            return CallSite(code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


class FeedWatchdog:
    """Watches the feeds of registered turns from one daemon thread (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: weakref.WeakSet[FeedTurn] = weakref.WeakSet()
        self._thread: threading.Thread | None = None

    def forget_after_fork(self) -> None:
        """In a forked child: none of the parent's threads or feeds exist here."""
        self.__init__()  # type: ignore[misc]

    def watch(self, deadline: float) -> FeedTurn:
        """A new turn with ``deadline``, watched while it is armed (for as long as the
        caller keeps it: the watchdog holds it weakly)."""
        turn = FeedTurn(deadline)
        with self._lock:
            self._turns.add(turn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="wfkit-feed-watchdog", daemon=True
                )
                self._thread.start()
        return turn

    def feed(
        self,
        turn: FeedTurn,
        feed: Callable[[Sequence[Event], FeedTurn], T],
        events: Sequence[Event],
    ) -> T | None:
        """Call ``feed(events, turn)`` with ``turn`` armed for the calling thread.

        Returns:
            What ``feed`` returned; None when ``FeedStuck`` cut it short (then
            ``turn.fired`` is set; it may be set with a result too, when the
            exception ended the workflow's own task instead).
        """
        turn.thread_id = threading.get_ident()
        turn.ticks += 1
        turn.armed = True
        try:
            try:
                return feed(events, turn)
            finally:
                turn.armed = False  # ``_disarm``, inline (once per feed)
                if turn.claimed or turn.fired:
                    self._disarm_slowly(turn)
        except FeedStuck:
            self._disarm(turn)
            return None

    def _disarm(self, turn: FeedTurn) -> None:
        """Stop watching ``turn``'s feed; a ``FeedStuck`` raised but not yet delivered
        is cleared. Safe to call while one is pending for this thread.

        Lock-free unless the watchdog is looking at the turn (Dekker's handshake, which
        the GIL makes sound): the feed clears ``armed`` then reads ``claimed``; the
        watchdog sets ``claimed`` then reads ``armed``, so at least one sees the other.
        """
        turn.armed = False
        if turn.claimed or turn.fired:
            self._disarm_slowly(turn)

    def _disarm_slowly(self, turn: FeedTurn) -> None:
        while True:
            try:
                with self._lock:  # the watchdog holds it while it may raise
                    turn.armed = False
                    if turn.fired:
                        _raise_in(turn.thread_id, None)
                return
            except FeedStuck:  # delivered while disarming: nothing more can come
                continue

    def _watch(self) -> None:
        while True:
            with self._lock:
                deadlines = [turn.deadline for turn in self._turns if turn.armed]
            time.sleep(min(0.25, max(0.01, min(deadlines, default=1.0) / 5)))
            self._check(time.monotonic())

    def _check(self, now: float) -> None:
        with self._lock:
            turns = [turn for turn in self._turns if turn.armed]
        for turn in turns:
            if turn.ticks != turn.seen_ticks:
                turn.seen_ticks, turn.seen_since = turn.ticks, now
            elif now - turn.seen_since >= turn.deadline:
                self._interrupt(turn)

    def _interrupt(self, turn: FeedTurn) -> None:
        """Find the stuck line, then raise ``FeedStuck`` in the turn's thread."""
        site = None
        for _ in range(_SAMPLES):
            site = _user_frame_inside(sys._current_frames().get(turn.thread_id))
            if site is not None:
                break
            time.sleep(0.001)
        with self._lock:
            turn.claimed = True  # before reading ``armed``: see ``_disarm``
            try:
                if not turn.armed or turn.ticks != turn.seen_ticks:
                    return  # it moved on (or ended) meanwhile
                frame = sys._current_frames().get(turn.thread_id)
                if frame is None or frame.f_code in _GUARD_CODES:
                    return  # the feed is finishing: look again next time
                if site is not None or turn.stuck_at is None:
                    turn.stuck_at = site
                turn.fired = True
                turn.seen_since = time.monotonic()  # swallowed? raise again after a deadline
                _raise_in(turn.thread_id, FeedStuck)
            finally:
                turn.claimed = False


_GUARD_CODES: Final = frozenset(
    {
        FeedWatchdog.feed.__code__,
        FeedWatchdog._disarm.__code__,
        FeedWatchdog._disarm_slowly.__code__,
    }
)
"""The guard's own frames: a thread running them is finishing its feed, and is not
interrupted (the exception would escape the guard)."""

WATCHDOG: Final = FeedWatchdog()
"""The process's watchdog (one thread, shared by every session)."""

os.register_at_fork(after_in_child=WATCHDOG.forget_after_fork)


def stuck_message(run: RunLabel, turn: FeedTurn) -> str:
    """What a run that ran over its feed deadline fails with."""
    where = f"stuck at {turn.stuck_at}" if turn.stuck_at else "stuck at an unknown line"
    return (
        f'workflow "{run.workflow}" (run {run.run_id}) did not yield to the replay loop '
        f"for {turn.deadline:g} s, {where}: a workflow must not compute or spin without "
        "awaiting a step, sleep or hook (a busy loop, or one that only awaits "
        "asyncio.sleep(0)); move long computations into a step, or raise the worker's "
        "feed deadline (--feed-deadline, WFKIT_FEED_DEADLINE)"
    )
