"""The durable calls a replaying workflow makes, and the id stream that names them.

A workflow's step, hook and wait calls are records here, each keyed by its
correlation id. The replay session (``wfkit.runtime.replay.session``) creates them when user
code calls, and settles them when the log delivers their events. Nothing here
does I/O or touches the event loop beyond resolving futures.

A step call returns a ``StepFuture``. Everything in asyncio that takes a coroutine
takes it: the ones that also take futures (``ensure_future``, ``gather``,
``wait_for``, ``shield``, ``as_completed``, ``wait``) use it as it is, and the
workflow loop's ``create_task`` (hence ``asyncio.create_task`` and
``TaskGroup.create_task``) runs it in a task. The durable call itself is recorded
when the step function is called, not when a task first runs it: its correlation
id then depends only on the order of the calls in the workflow's code, never on the
order in which asyncio happens to start tasks.

Every call also remembers the user's source line (``CallSite``) so a replay
divergence can point at it.

Rejected: returning a real coroutine (an object ``asyncio.iscoroutine`` accepts).
Then ``gather`` and ``wait_for`` wrap every step in a task (the gather of 1,000
steps in ``bench.steps`` ran 25% slower), and a coroutine that is also a future
breaks ``asyncio.wait([ensure_future(step(...))])``, since ``ensure_future`` hands
a future back unchanged and ``wait`` refuses coroutines. A future that the workflow
loop also runs as a task gives every asyncio form at the cost of one wrapper
object, and only where a task is asked for.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, ClassVar, Final, NamedTuple

from wfkit.runtime.errors import HookConflictError
from wfkit.runtime.replay.loop import DeterministicEventLoop, WorkflowFuture

__all__ = [
    "DISPOSED",
    "NOT_USER_CODE",
    "CallSite",
    "CorrelationIds",
    "HookCall",
    "StepCall",
    "StepFuture",
    "WaitCall",
    "decode_ulid",
    "encode_ulid",
    "fresh_hook_token",
    "reject_with",
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
NOT_USER_CODE: Final = tuple(
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
    skip = NOT_USER_CODE
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(skip):
            # tuple.__new__: a NamedTuple's own __new__ is Python code (3x slower, per step)
            return tuple.__new__(CallSite, (code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return None


class _Disposed:
    """What a hook awaiter receives when the workflow disposed the hook."""

    def __repr__(self) -> str:
        return "DISPOSED"


DISPOSED: Final = _Disposed()


def fresh_hook_token() -> str:
    """A new default hook token: 144 bits from ``secrets``, as 24 url-safe characters.

    Never derived from the run (its id is public: URLs, logs, the inspector), so nobody
    who sees a run can compute its webhook URLs. The token is recorded in
    ``hook_created``, and a replay takes it from there (``ReplaySession.create_hook``).
    """
    return secrets.token_urlsafe(18)


class CorrelationIds:
    """Deterministic ``step_``/``hook_``/``wait_`` ids for one run.

    ULIDs in monotonic mode: the timestamp is the run's start (ms); the 80-bit
    random part starts at a value drawn from a ``random.Random`` seeded by the
    run id (and used for nothing else), and each later id adds one. So the n-th
    call of a run gets the same id on every replay, ids sort in call order (as
    the DevKit's ``monotonicFactory`` ids do), and user code that draws random
    numbers does not shift them.

    The generator is seeded at the first id asked for (seeding a Mersenne Twister
    costs more than a whole step's ids), and the ten characters of the timestamp are
    encoded once: with one bit of headroom the random part never carries into them.
    """

    __slots__ = ("_first", "_heads", "_ms", "_random", "_run_id")

    def __init__(self, run_id: str, start: datetime) -> None:
        self._run_id = run_id
        self._ms = int(start.timestamp() * 1000) & ((1 << 48) - 1)
        self._first = self._random = -1  # not drawn yet (``_draw``)
        self._heads: dict[str, str] = {}

    def _draw(self) -> int:
        rng = random.Random(f"wfkit-correlation-ids:{self._run_id}")
        # One bit of headroom: increments never carry into the timestamp.
        self._first = self._random = rng.getrandbits(79)
        return self._first

    def next(self, prefix: str) -> str:
        """The next id, e.g. ``step_01JD…`` for ``prefix="step"``."""
        value = self._random
        if value < 0:
            value = self._draw()
        value += 1
        self._random = value
        head = self._heads.get(prefix)
        if head is None:
            head = self._heads[prefix] = f"{prefix}_{encode_ulid(self._ms << 80)[:10]}"
        if value >> 80:  # past 2**79 ids: never, but then encode the whole value
            return f"{prefix}_{encode_ulid((self._ms << 80) | value)}"
        pairs = _CROCKFORD_PAIRS
        return (
            head
            + pairs[value >> 70]
            + pairs[(value >> 60) & 1023]
            + pairs[(value >> 50) & 1023]
            + pairs[(value >> 40) & 1023]
            + pairs[(value >> 30) & 1023]
            + pairs[(value >> 20) & 1023]
            + pairs[(value >> 10) & 1023]
            + pairs[value & 1023]
        )

    @property
    def issued(self) -> int:
        """How many ids ``next()`` gave out: the workflow's durable calls so far."""
        return 0 if self._first < 0 else self._random - self._first

    def position(self, correlation_id: str) -> int | None:
        """Which call of this run (1 = the first) ``correlation_id`` names, whatever its
        prefix; None when it is not an id this stream makes (not this run's)."""
        value = decode_ulid(correlation_id.rpartition("_")[2])
        if value is None or value >> 80 != self._ms:
            return None
        first = self._first if self._first >= 0 else self._draw()
        offset = (value & ((1 << 80) - 1)) - first
        return offset if 0 < offset < (1 << 40) else None


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


class StepFuture(WorkflowFuture[Any]):
    """What calling a step returns inside a workflow: the future of the step's result.

    A future, so ``gather``, ``shield``, ``wait_for``, ``as_completed``,
    ``ensure_future`` and ``asyncio.wait`` use it as it is (a gather of N steps
    creates no tasks), and it may be awaited any number of times. ``create_task`` and
    ``TaskGroup.create_task`` take it too: the workflow loop runs it in a task that
    waits for it (``wfkit.runtime.replay.loop.FutureRunner``). The durable call is
    already recorded (see the module docstring). It hashes by creation order
    (``WorkflowFuture``).

    Args:
        loop: the workflow loop.
        step_id: the step's id (its short name shows in reprs, e.g. a task's).
        correlation_id: the call's ``step_…`` id.
    """

    __slots__ = ("_step_id", "correlation_id")

    def __init__(self, loop: DeterministicEventLoop, step_id: str, correlation_id: str) -> None:
        # WorkflowFuture.__init__ inlined: one of these per step call, on the replay hot path.
        self._wfkit_order = loop.next_creation_order()
        self._step_id = step_id
        self.correlation_id = correlation_id
        asyncio.Future.__init__(self, loop=loop)

    @property
    def __name__(self) -> str:  # a task running it shows as ``coro=<name()>``
        return self._step_id.rpartition("//")[2]

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled() else "done" if self.done() else "pending"
        return f"<step call {self.__name__} {self.correlation_id} {state}>"


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
