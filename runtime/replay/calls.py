"""The durable calls a replaying workflow makes, and the id stream that names them.

A workflow's step, hook and wait calls are records here, each keyed by its
correlation id. The replay session (``wfkit.runtime.replay.session``) creates them when user
code calls, and settles them when the log delivers their events. Nothing here
does I/O or touches the event loop beyond resolving futures.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final

from wfkit.runtime.errors import HookConflictError

__all__ = [
    "DISPOSED",
    "CorrelationIds",
    "HookCall",
    "StepCall",
    "WaitCall",
    "encode_ulid",
    "reject_with",
    "resolve_with",
    "set_result_unless_cancelled",
]

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_CROCKFORD_PAIRS: Final = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def encode_ulid(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 characters (two per 10-bit lookup)."""
    pairs = _CROCKFORD_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


class _Disposed:
    """What a hook awaiter receives when the workflow disposed the hook."""

    def __repr__(self) -> str:
        return "DISPOSED"


DISPOSED: Final = _Disposed()


class CorrelationIds:
    """Deterministic ``step_``/``hook_``/``wait_`` ids (and default hook tokens) for one run.

    ULIDs in monotonic mode: the timestamp is the run's start (ms); the 80-bit
    random part starts at a value drawn from a ``random.Random`` seeded by the
    run id (and used for nothing else), and each later id adds one. So the n-th
    call of a run gets the same id on every replay, ids sort in call order (as
    the DevKit's ``monotonicFactory`` ids do), and user code that draws random
    numbers does not shift them.
    """

    def __init__(self, run_id: str, start: datetime) -> None:
        self._rng = random.Random(f"wfkit-correlation-ids:{run_id}")
        self._ms = int(start.timestamp() * 1000) & ((1 << 48) - 1)
        # One bit of headroom: increments never carry into the timestamp.
        self._random = self._rng.getrandbits(79)

    def next(self, prefix: str) -> str:
        """The next id, e.g. ``step_01JD…`` for ``prefix="step"``."""
        self._random += 1
        return f"{prefix}_{encode_ulid((self._ms << 80) | self._random)}"

    def token(self) -> str:
        """A default hook token: 24 url-safe characters."""
        return base64.urlsafe_b64encode(self._rng.randbytes(18)).decode("ascii")


@dataclass(eq=False)
class StepCall:
    """One ``await some_step(...)``: its serialized input and the future the workflow awaits."""

    correlation_id: str
    step_id: str
    input: dict[str, Any]
    future: asyncio.Future[Any]
    created: bool = False

    kind: ClassVar[str] = "step"


@dataclass(eq=False)
class WaitCall:
    """One durable timer: ``sleep()``, ``asyncio.sleep(n)``, a ``wait_for``/``timeout`` deadline."""

    correlation_id: str
    resume_at: datetime
    handle: asyncio.TimerHandle
    created: bool = False
    cancelled: bool = False
    fired: bool = False

    kind: ClassVar[str] = "wait"


@dataclass(eq=False)
class HookCall:
    """One ``create_hook()``: a token, and the payloads the log delivers to it.

    Payloads go to the oldest waiting awaiter, or wait in ``buffer`` for the
    next one. ``HookCall`` is what ``wfkit.runtime.api.workflow.Hook`` wraps.
    """

    correlation_id: str
    token: str
    metadata: Any
    is_webhook: bool
    respond_with: Any
    loop: asyncio.AbstractEventLoop
    created: bool = False
    conflicting_run_id: str | None = None
    conflicted: bool = False
    disposed: bool = False
    dispose_recorded: bool = False
    buffer: deque[tuple[bool, Any]] = field(default_factory=deque)
    awaiters: deque[asyncio.Future[Any]] = field(default_factory=deque)

    kind: ClassVar[str] = "hook"

    def next_payload(self) -> asyncio.Future[Any]:
        """A future for the next payload (``DISPOSED`` once the hook is disposed).

        Raises (through the future):
            HookConflictError: another live run holds the token.
        """
        future: asyncio.Future[Any] = self.loop.create_future()
        if self.conflicted:
            future.set_exception(self.conflict_error())
        elif self.buffer:
            _settle(future, self.buffer.popleft())
        elif self.disposed:
            future.set_result(DISPOSED)
        else:
            self.awaiters.append(future)
        return future

    def conflict_error(self) -> BaseException:
        return HookConflictError(self.token, self.conflicting_run_id)

    def deliver(self, item: tuple[bool, Any]) -> None:
        """Hand a payload (``(True, value)``) or its read error (``(False, exc)``) on."""
        if self.disposed:
            return
        while self.awaiters:
            future = self.awaiters.popleft()
            if not future.done():
                _settle(future, item)
                return
        self.buffer.append(item)

    def reject_awaiters(self) -> None:
        """Fail every waiting awaiter with the conflict error."""
        self.buffer.clear()
        while self.awaiters:
            future = self.awaiters.popleft()
            if not future.done():
                future.set_exception(self.conflict_error())

    def release_awaiters(self) -> None:
        """Tell every waiting awaiter the hook is disposed."""
        while self.awaiters:
            future = self.awaiters.popleft()
            if not future.done():
                future.set_result(DISPOSED)


def _settle(future: asyncio.Future[Any], item: tuple[bool, Any]) -> None:
    ok, value = item
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def set_result_unless_cancelled(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def resolve_with(future: asyncio.Future[Any], read: Callable[[], Any]) -> None:
    """Resolve with ``read()``, or fail with what reading raised (raised at the await)."""
    try:
        value = read()
    except Exception as exc:  # an unreadable result fails the await, catchably
        future.set_exception(exc)
        return
    future.set_result(value)


def reject_with(future: asyncio.Future[Any], read: Callable[[], BaseException]) -> None:
    """Fail with the exception ``read()`` rebuilds (or with what rebuilding raised)."""
    try:
        error = read()
    except Exception as exc:
        error = exc
    try:
        future.set_exception(error)
    except TypeError:  # StopIteration cannot travel through a future
        future.set_exception(RuntimeError(f"step raised {type(error).__name__}: {error}"))
