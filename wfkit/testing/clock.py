"""The virtual clock behind time skipping.

Virtual time runs at the real rate and can jump forward: ``skip_to`` moves it to the
next due timer. The environment (``env``) installs it with
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
    """Decides, when the worker is idle, whether to jump the clock to the next due message.

    Skipping is *unlocked* only while the test waits (``unlocked()`` is entered by
    ``WorkflowEnv.result`` and ``wait_for_hook``), and never while a hook the test waits
    for exists: the test is about to resume it, and a 30-day timeout racing that hook
    must not fire first.

    Args:
        clock: the clock to move.
        next_due: when the earliest queued message becomes visible (epoch seconds),
            or None when the queue is empty.
        hook_is_live: whether a live hook holds a token.
    """

    def __init__(
        self,
        clock: VirtualClock,
        next_due: Callable[[], float | None],
        hook_is_live: Callable[[str], bool],
    ) -> None:
        self.clock = clock
        self._next_due = next_due
        self._hook_is_live = hook_is_live
        self._lock = threading.Lock()
        self._waiters = 0
        self._awaited_tokens: list[str] = []
        self.jumps = 0
        """How often the clock jumped."""

    def unlocked(self, *, awaiting_token: str | None = None) -> _Unlocked:
        """A context manager inside which idle time may be skipped."""
        return _Unlocked(self, awaiting_token)

    def on_idle(self) -> bool:
        """The worker's ``on_idle`` hook: jump to the next due message if allowed."""
        with self._lock:
            if self._waiters == 0:
                return False
            tokens = list(self._awaited_tokens)
        if any(self._hook_is_live(token) for token in tokens):
            return False
        due = self._next_due()
        if due is None or not self.clock.skip_to(due):
            return False
        self.jumps += 1
        return True

    def _enter(self, token: str | None) -> None:
        with self._lock:
            self._waiters += 1
            if token is not None:
                self._awaited_tokens.append(token)

    def _exit(self, token: str | None) -> None:
        with self._lock:
            self._waiters -= 1
            if token is not None:
                self._awaited_tokens.remove(token)


class _Unlocked:
    def __init__(self, skipper: TimeSkipper, token: str | None) -> None:
        self._skipper = skipper
        self._token = token

    def __enter__(self) -> None:
        self._skipper._enter(self._token)

    def __exit__(self, *exc: object) -> None:
        self._skipper._exit(self._token)
