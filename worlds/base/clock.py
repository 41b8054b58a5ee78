"""The clock wfkit reads for durable time: event timestamps, wait due times, retry
delays and queue visibility.

Every read of "what time is it" that ends up in the log or decides when something
becomes due goes through ``current_clock()`` (``utc_now()`` in ``records`` is its
datetime form). Production uses ``SYSTEM_CLOCK``; the testing kit
(``wfkit.testing``) installs a virtual clock with ``use_clock`` that jumps forward
to the next due timer when a run is idle, so ``sleep("1d")`` finishes at once while
the workflow sees a day pass.

What does *not* go through it: monotonic deadlines of blocking calls (how long a
receive or a stream read waits), lease keeping, and the Postgres queue, which reads
the database server's clock (``clock_timestamp()``) so that machines agree; time
skipping therefore needs the memory or local world.

Alternatives rejected: patching ``time.time`` (it would move every library's clock,
asyncio's included, and tests of the kit would test the patch); a clock argument
threaded through each world and engine call (dozens of signatures for one test
seam); a context variable (worker threads and ``asyncio.to_thread`` hops would each
need it copied, and a clock that differs by thread is a bug, not a feature).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "current_clock", "use_clock"]


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock time (aware UTC datetimes and epoch seconds that agree)."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def timestamp(self) -> float:
        """The current time in seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()

_current: Clock = SYSTEM_CLOCK
_swap_lock = threading.Lock()


def current_clock() -> Clock:
    """The clock wfkit reads durable time from (``SYSTEM_CLOCK`` unless a test set one)."""
    return _current


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Read durable time from ``clock`` inside the block, process-wide; restore after.

    Raises:
        RuntimeError: another non-system clock is already in use (two test
            environments at once would disagree about the time).
    """
    global _current
    with _swap_lock:
        previous = _current
        if previous is not SYSTEM_CLOCK and previous is not clock:
            raise RuntimeError(
                f"a test clock is already in use ({previous!r}); "
                "one time-skipping environment at a time"
            )
        _current = clock
    try:
        yield clock
    finally:
        with _swap_lock:
            _current = previous
