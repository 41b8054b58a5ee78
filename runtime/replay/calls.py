"""The durable calls a replaying workflow makes, and the id stream that names them.

A workflow's step, hook and wait calls are records here, each keyed by its
correlation id. The replay session (``wfkit.runtime.replay.session``) creates them when user
code calls, and settles them when the log delivers their events. Nothing here
does I/O or touches the event loop beyond resolving futures.

A step call returns a ``StepCoroutine``: a coroutine (``asyncio.iscoroutine`` is
True), so ``create_task``, ``TaskGroup.create_task``, ``ensure_future``,
``gather``, ``wait_for``, ``shield`` and ``timeout`` take it as they take any
coroutine. The durable call itself is recorded when the step function is called,
not when the coroutine first runs: its correlation id then depends only on the
order of the calls in the workflow's code, never on the order in which asyncio
happens to start tasks. Every call also remembers the user's source line
(``CallSite``) so a replay divergence can point at it.
"""

from __future__ import annotations

import asyncio
import base64
import collections.abc
import os
import random
import sys
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType, TracebackType
from typing import Any, ClassVar, Final, NamedTuple

from wfkit.runtime.errors import HookConflictError

__all__ = [
    "DISPOSED",
    "CallSite",
    "CorrelationIds",
    "HookCall",
    "StepCall",
    "StepCoroutine",
    "WaitCall",
    "decode_ulid",
    "encode_ulid",
    "reject_with",
    "resolve_with",
    "set_result_unless_cancelled",
    "user_call_site",
]

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_CROCKFORD_PAIRS: Final = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def encode_ulid(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 characters (two per 10-bit lookup)."""
    pairs = _CROCKFORD_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


_CROCKFORD_VALUES: Final = {c: i for i, c in enumerate(_CROCKFORD)}


def decode_ulid(text: str) -> int | None:
    """The 128-bit value of 26 Crockford base32 characters, or None if ``text`` is not one."""
    if len(text) != 26:
        return None
    value = 0
    for char in text:
        digit = _CROCKFORD_VALUES.get(char)
        if digit is None:
            return None
        value = (value << 5) | digit
    return value if value < (1 << 128) else None


class CallSite(NamedTuple):
    """Where user code made a durable call: its source file and line."""

    filename: str
    lineno: int

    def __str__(self) -> str:
        path = self.filename
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            relative = path
        if not relative.startswith(".."):
            path = relative
        return f"{path}:{self.lineno}"


# Frames in these files are wfkit's or asyncio's own, never the user's call site.
_NOT_USER_CODE: Final = tuple(
    {
        os.path.dirname(os.path.dirname(__file__)) + os.sep,  # wfkit.runtime, as imported
        os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep,
        os.path.dirname(asyncio.__file__) + os.sep,
    }
)


def user_call_site(frame: FrameType | None = None) -> CallSite | None:
    """The innermost frame (from ``frame``, default the caller's) outside wfkit and asyncio.

    Generated workflow modules are compiled with the original file name and line
    numbers, so this is the line in the user's source. None when the chain ends
    first (code running directly in a task that asyncio started).
    """
    if frame is None:
        frame = sys._getframe(1)
    skip = _NOT_USER_CODE
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(skip):
            return CallSite(code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


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
        self._first = self._random = self._rng.getrandbits(79)

    def next(self, prefix: str) -> str:
        """The next id, e.g. ``step_01JD…`` for ``prefix="step"``."""
        self._random += 1
        return f"{prefix}_{encode_ulid((self._ms << 80) | self._random)}"

    @property
    def issued(self) -> int:
        """How many ids ``next()`` gave out: the workflow's durable calls so far."""
        return self._random - self._first

    def position(self, correlation_id: str) -> int | None:
        """Which call of this run (1 = the first) ``correlation_id`` names, whatever its
        prefix; None when it is not an id this stream makes (not this run's)."""
        value = decode_ulid(correlation_id.rpartition("_")[2])
        if value is None or value >> 80 != self._ms:
            return None
        offset = (value & ((1 << 80) - 1)) - self._first
        return offset if 0 < offset < (1 << 40) else None

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
    site: CallSite | None = None
    created: bool = False

    kind: ClassVar[str] = "step"


class StepCoroutine(collections.abc.Coroutine[Any, Any, Any]):
    """What calling a step returns inside a workflow: a coroutine of the step's result.

    The durable call is already recorded (see the module docstring); running the
    coroutine only waits for its result. Unlike a plain coroutine it may be awaited
    more than once (each await gives the result), as the future it replaces could.
    Closing it, or throwing into it, before it ever ran abandons the call: the step
    is then never created, like a plain coroutine that never ran. It hashes by
    creation order, so sets of step calls iterate the same way on every replay.
    """

    __slots__ = ("_call", "_iterator", "_order")

    def __init__(self, call: StepCall, order: int) -> None:
        self._call = call
        self._order = order
        self._iterator: Generator[Any, None, Any] | None = None

    def __hash__(self) -> int:
        return self._order

    @property
    def __name__(self) -> str:  # asyncio's task repr shows it as ``name()``
        return self._call.step_id.rpartition("//")[2]

    @property
    def correlation_id(self) -> str:
        """The step's correlation id (``step_…``)."""
        return self._call.correlation_id

    def __repr__(self) -> str:
        return f"<step call {self.__name__} {self._call.correlation_id}>"

    def __await__(self) -> Generator[Any, None, Any]:
        return self._call.future.__await__()

    def send(self, value: Any) -> Any:
        if self._iterator is None:
            self._iterator = self._call.future.__await__()
        return self._iterator.send(value)

    def throw(
        self,
        typ: Any,
        val: Any = None,
        tb: TracebackType | None = None,
    ) -> Any:
        if self._iterator is None:
            self._abandon()
            self._iterator = self._call.future.__await__()
        if val is None and tb is None:
            return self._iterator.throw(typ)
        return self._iterator.throw(typ, val, tb)

    def close(self) -> None:
        if self._iterator is None:
            self._abandon()
        else:
            self._iterator.close()

    def _abandon(self) -> None:
        # Never ran: a plain coroutine would never have reached its step call.
        self._call.future.cancel()


@dataclass(eq=False)
class WaitCall:
    """One durable timer: ``sleep()``, ``asyncio.sleep(n)``, a ``wait_for``/``timeout`` deadline."""

    correlation_id: str
    resume_at: datetime
    handle: asyncio.TimerHandle
    called_at: datetime
    """The workflow clock when the timer was set (``resume_at - called_at`` is its duration)."""
    site: CallSite | None = None
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
    token_given: bool = False
    """The workflow chose the token (a default token is not checked against the log)."""
    site: CallSite | None = None
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
