"""The virtual clock behind time skipping.

Virtual time runs at the real rate and can jump forward: ``skip_to`` moves it to the
next due timer (a queued message becoming visible, a schedule's next tick). The environment (``env``) installs it with
``wfkit.worlds.base.use_clock`` so every durable timestamp (event times, wait due
times, retry times, queue visibility) reads it, and asks it to jump only when the
worker is idle and the test is waiting (``TimeSkipper``): the semantics of Temporal's
``WorkflowEnvironment.start_time_skipping()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["TimeSkipper", "VirtualClock"]


class VirtualClock:
    """A wall clock that runs at the real rate plus the time skipped so far.

    Args:
        start: the virtual time now (default: the real time now).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        real = time.time()
        self._offset = 0.0 if start is None else start.timestamp() - real
        self.skipped = timedelta(0)
        """How much time was skipped in total."""

    def timestamp(self) -> float:
        """Virtual seconds since the epoch."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """The virtual time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def skip(self, duration: timedelta) -> None:
        """Move the clock forward by ``duration``.

        Raises:
            ValueError: ``duration`` is negative (the clock never goes back).
        """
        if duration < timedelta(0):
            raise ValueError(f"the clock only moves forward, not by {duration}")
        with self._lock:
            self._offset += duration.total_seconds()
            self.skipped += duration

    def skip_to(self, timestamp: float) -> bool:
        """Jump to ``timestamp`` (epoch seconds) if it lies ahead; whether it moved."""
        with self._lock:
            ahead = timestamp - (time.time() + self._offset)
            if ahead <= 0:
                return False
            self._offset += ahead
            self.skipped += timedelta(seconds=ahead)
            return True

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()}, skipped={self.skipped})"


class TimeSkipper:
    """Decides, when the worker is idle, whether to jump the clock to the next due timer.

    Skipping is *unlocked* only while the test waits (``unlocked()`` is entered by
    ``WorkflowEnv.result``, ``wait_for_hook`` and ``stream``), and never once what a
    waiting test waits for has happened: a hook it is about to resume (a 30-day
    timeout racing that hook must not fire first), or a run that has ended (the clock
    would run on to timers the run left behind before the test sees the end).

    Args:
        clock: the clock to move.
        next_due: when the earliest timer falls due (epoch seconds: a queued message
            becoming visible, a schedule's tick), or None when there is none.
    """

    def __init__(self, clock: VirtualClock, next_due: Callable[[], float | None]) -> None:
        self.clock = clock
        self._next_due = next_due
        self._lock = threading.Lock()
        self._waiters = 0
        self._awaited: list[Callable[[], bool]] = []
        self.jumps = 0
        """How often the clock jumped."""

    def unlocked(self, *, until: Callable[[], bool] | None = None) -> _Unlocked:
        """A context manager inside which idle time may be skipped, while ``until()``
        (what the test waits for has happened) is false."""
        return _Unlocked(self, until)

    def on_idle(self) -> bool:
        """The worker's ``on_idle`` hook: jump to the next due timer if allowed."""
        with self._lock:
            if self._waiters == 0:
                return False
            awaited = list(self._awaited)
        if any(happened() for happened in awaited):
            return False
        due = self._next_due()
        if due is None or not self.clock.skip_to(due):
            return False
        self.jumps += 1
        return True

    def _enter(self, until: Callable[[], bool] | None) -> None:
        with self._lock:
            self._waiters += 1
            if until is not None:
                self._awaited.append(until)

    def _exit(self, until: Callable[[], bool] | None) -> None:
        with self._lock:
            self._waiters -= 1
            if until is not None:
                self._awaited.remove(until)


class _Unlocked:
    def __init__(self, skipper: TimeSkipper, until: Callable[[], bool] | None) -> None:
        self._skipper = skipper
        self._until = until

    def __enter__(self) -> None:
        self._skipper._enter(self._until)

    def __exit__(self, *exc: object) -> None:
        self._skipper._exit(self._until)
