"""A deterministic asyncio event loop for workflow replay: no I/O, no wall clock.

The replay session drives it by hand: it delivers one event, then calls
``run_until_idle()``, which runs ready callbacks until none remain. While it
runs, the loop is installed as the thread's running loop (and restored
afterwards), so ``asyncio.get_running_loop()``, tasks, ``gather``, ``wait``,
``as_completed``, ``TaskGroup``, ``timeout`` and ``wait_for`` all work inside a
workflow even when the worker's own asyncio loop is running in the same thread.

Time is the workflow clock (``time()`` returns its POSIX timestamp), moved only
by the session. A timer with a positive delay is not kept in a heap: it is
handed to the ``TimerScheduler`` (the session), which turns it into a durable
wait and fires it when the log says the wait completed; so ``call_later`` /
``call_at`` are durable too. Everything that needs a socket, a pipe, a thread or
a process raises ``WorkflowIOError``. ``create_task`` also takes a future of this
loop and runs a task that waits for it (``FutureRunner``): a step call is a future,
and ``asyncio.create_task(step(...))`` / ``TaskGroup.create_task`` must take it.

Set order. ``asyncio.wait`` returns sets, ``TaskGroup`` keeps its tasks in a set
and ``as_completed`` builds one; a set iterates in hash order, and the default
hash of a task or future is its memory address, which differs between the first
execution and a replay (another process, or the same one later). A workflow that
iterates such a set would call its steps in a different order on replay. So every
task and future this loop creates (``create_task``, ``create_future``; that is,
all of ``asyncio``'s own: ``ensure_future``, ``gather``'s children, ``TaskGroup``,
``shield``, ``sleep``, locks and events), and every step call's future, hashes by
its creation order on the loop,
offset by a per-run base, and tasks get names from the same order
(``workflow-task-3``) instead of the process-wide ``Task-N`` counter. The same
program run against the same log therefore builds the same sets and iterates
them identically. ``asyncio.as_completed`` additionally turns its inputs into
tasks *in set order*, which for plain coroutines (hashed by address) would start
them in a different order on replay; on this loop it is given tasks created in
the caller's order instead (``deterministic_as_completed``, installed as
``asyncio.as_completed`` when this module is imported; on any other loop it is the
standard function, unchanged).

Alternatives rejected for set order: *returning ordered sets from a wrapped
``asyncio.wait``* (set operations and ``pop()`` would still follow hashes, and
``TaskGroup`` keeps its own set); *asking users to call wfkit's own ``wait`` /
``as_completed``* (Temporal's answer: the stdlib versions stay a silent trap);
*rewriting ``asyncio.as_completed`` calls in the transformer* (misses helper
modules that are not transformed). Futures created by ``asyncio.gather`` itself
(its result) and ``asyncio.Future()`` constructed directly keep address hashes:
put them in a task before mixing them into ``asyncio.wait`` if the result sets
are iterated.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import itertools
import logging
import math
import sys
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any, Final, NoReturn, Protocol, TypeVar, TypeVarTuple, Unpack

from wfkit.runtime.errors import WorkflowIOError

__all__ = [
    "DeterministicEventLoop",
    "FutureRunner",
    "TimerScheduler",
    "WorkflowFuture",
    "WorkflowIOError",
    "WorkflowTask",
    "deterministic_as_completed",
]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

logger = logging.getLogger("wfkit.replay")


class TimerScheduler(Protocol):
    """Whoever turns the loop's timers into durable waits (the replay session)."""

    def timer_scheduled(self, handle: asyncio.TimerHandle) -> None:
        """A timer due after the current time was created."""
        ...

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """A timer the scheduler knows was cancelled before it fired."""
        ...


class _ClosedScheduler:
    """The scheduler of a closed loop: it has no durable timers left to manage."""

    def timer_scheduled(self, handle: asyncio.TimerHandle) -> None:
        raise RuntimeError("the workflow's event loop is closed")

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass


_CLOSED_SCHEDULER: Final = _ClosedScheduler()


def _unavailable(name: str) -> Callable[..., NoReturn]:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise WorkflowIOError(
            f"loop.{name}() is not available inside a workflow; use a step "
            "(workflows must be deterministic: all I/O, threads and processes go in steps)"
        )

    refuse.__name__ = name
    return refuse


class WorkflowFuture(asyncio.Future[_T]):
    """A future of the workflow loop: it hashes by creation order (see the module docstring)."""

    __slots__ = ("_wfkit_order",)

    def __init__(self, *, loop: DeterministicEventLoop) -> None:
        # Before Future.__init__: nothing may hash the object before its order is set.
        self._wfkit_order = loop.next_creation_order()
        super().__init__(loop=loop)

    def __hash__(self) -> int:
        return self._wfkit_order


class WorkflowTask(asyncio.Task[_T]):
    """A task of the workflow loop: it hashes by creation order and is named by it."""

    __slots__ = ("_wfkit_order",)

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        loop: DeterministicEventLoop,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        # Set first: Task.__init__ adds the task to asyncio's registry of tasks (a set).
        order = self._wfkit_order = loop.next_creation_order()
        if name is None:
            name = f"workflow-task-{order - loop.creation_base}"
        super().__init__(coro, loop=loop, name=name, context=context)

    def __hash__(self) -> int:
        return self._wfkit_order


class FutureRunner(Coroutine[Any, Any, Any]):
    """The coroutine a task runs when the workflow loop's ``create_task`` gets a future.

    Plain asyncio refuses a future there ("a coroutine was expected"); inside a
    workflow a step call is a future (``wfkit.runtime.replay.calls.StepFuture``) and
    ``asyncio.create_task(step(...))`` / ``TaskGroup.create_task(step(...))`` must work,
    so the task waits for the future and ends with its result. Cancelled (thrown
    into) or closed before it ever ran, it cancels the future, as a task that never
    started would never have awaited it: an uncreated step is then never written.
    """

    __slots__ = ("_future", "_started")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self._future = future
        self._started = False

    @property
    def __name__(self) -> str:  # asyncio's task repr: ``coro=<name()>``
        name: str = getattr(self._future, "__name__", "future")
        return name

    def __await__(self) -> Generator[Any, None, Any]:
        return self._future.__await__()

    def send(self, value: Any) -> Any:
        self._started = True
        future = self._future
        if future.done():
            raise StopIteration(future.result())
        future._asyncio_future_blocking = True
        return future

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not self._started:
            self._started = True
            self._future.cancel()
        if isinstance(typ, BaseException):
            error = typ
        elif isinstance(val, BaseException):
            error = val
        else:
            error = typ() if val is None else typ(val)
        raise error if tb is None else error.with_traceback(tb)

    def close(self) -> None:
        if not self._started:
            self._started = True
            self._future.cancel()


class DeterministicEventLoop(asyncio.AbstractEventLoop):
    """An event loop whose only sources of progress are ready callbacks and fired timers.

    Args:
        scheduler: receives every timer due in the future (``call_later`` with a
            positive delay, ``call_at`` past ``time()``).
        now: the initial workflow clock, as a POSIX timestamp.
        creation_base: where the creation order of tasks and futures (their hash)
            starts; derived from the run, so every replay of a run uses the same
            numbers while runs cached side by side do not collide in asyncio's
            process-wide set of tasks.
    """

    def __init__(self, scheduler: TimerScheduler, now: float, *, creation_base: int = 0) -> None:
        self._scheduler = scheduler
        self._now = now
        self.creation_base = creation_base
        # A C-level counter: one creation order per task, future and step call.
        self.next_creation_order: Callable[[], int] = itertools.count(creation_base + 1).__next__
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self.ready = self._ready
        """The ready callbacks (read-only for the session: truthy when
        ``run_until_idle()`` has work; a deque tests faster than a property)."""
        self._running = False
        self._closed = False
        self._exception_handler: Any = None
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] | None = None
        """Async generators first iterated on this loop (made at the first one)."""
        self._task_factory: Any = None
        # This loop's tasks, for ``close``: ``asyncio.all_tasks(loop)`` scans every
        # task of the process (every cached run's), which grew with the worker's load.
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    # --- driving ------------------------------------------------------------------

    def set_time(self, now: float) -> None:
        """Move the clock (the session never moves it backwards)."""
        self._now = now

    def fire_timer(self, handle: asyncio.TimerHandle) -> None:
        """Make a durable timer's callback ready, unless the timer was cancelled."""
        if not handle.cancelled():
            self._ready.append(handle)

    def run_until_idle(self, max_callbacks: int | None = None) -> None:
        """Run ready callbacks (and the ones they schedule) until none remain.

        Installs this loop as the running loop and its async-generator hooks for
        the duration, then restores the caller's (a worker's own loop may be running).

        Args:
            max_callbacks: stop after this many callbacks even if more are ready
                (teardown uses it so code that refuses to die cannot hang it).
        """
        if self._running:
            raise RuntimeError("run_until_idle() called re-entrantly")
        previous = asyncio.events._get_running_loop()
        hooks = sys.get_asyncgen_hooks()
        self._running = True
        asyncio.events._set_running_loop(self)
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter, finalizer=self._asyncgen_finalizer
        )
        try:
            ready = self._ready
            budget = -1 if max_callbacks is None else max_callbacks
            while ready and budget != 0:
                budget -= 1
                handle = ready.popleft()
                if not handle.cancelled():
                    handle._run()
        finally:
            sys.set_asyncgen_hooks(*hooks)
            asyncio.events._set_running_loop(previous)
            self._running = False

    def _asyncgen_firstiter(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens is None:
            self._asyncgens = weakref.WeakSet()
        self._asyncgens.add(agen)

    def _asyncgen_finalizer(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens is not None:
            self._asyncgens.discard(agen)
        if not self._closed:
            self.call_soon(self.create_task, agen.aclose())

    def close_asyncgens(self) -> None:
        """Schedule ``aclose()`` of every async generator still alive (session teardown)."""
        agens = self._asyncgens
        if not agens:
            return
        for agen in list(agens):
            agens.discard(agen)
            self.create_task(agen.aclose())

    # --- scheduling ---------------------------------------------------------------

    def time(self) -> float:
        return self._now

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        # Only the replaying thread touches this loop; there is nothing to wake.
        return self.call_soon(callback, *args, context=context)

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self._now + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        self._check_closed()
        if not math.isfinite(when):
            raise ValueError(
                f"a workflow timer needs a finite time, got {when!r} (a durable wait must "
                "end; to wait without a deadline, await the thing itself)"
            )
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        if when <= self._now:
            # Due already: an ordinary ready callback, not a durable wait.
            self._ready.append(handle)
        else:
            self._scheduler.timer_scheduled(handle)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel(); the durable wait stays subscribed to its events.
        self._scheduler.timer_cancelled(handle)

    # --- futures and tasks --------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return WorkflowFuture(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T] | asyncio.Future[_T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        self._check_closed()
        if isinstance(coro, asyncio.Future):
            coro = FutureRunner(coro)  # a step call (see FutureRunner)
        if self._task_factory is not None:
            # The factory signature asyncio itself uses: context only when given.
            if context is None:
                task: asyncio.Task[_T] = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                task.set_name(name)
        else:
            task = WorkflowTask(coro, loop=self, name=name, context=context)
        self.tasks.add(task)
        return task

    def set_task_factory(self, factory: Any) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # --- state --------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        # The scheduler (the session) holds this loop: without the cycle, a finished
        # session is freed by reference counting, not left to the cyclic collector.
        # A closed loop schedules no timer; a cancelled one is nothing to a closed session.
        self._scheduler = _CLOSED_SCHEDULER

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("the workflow's event loop is closed")

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    # --- errors -------------------------------------------------------------------

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        logger.debug("workflow event loop: %s", context.get("message"), exc_info=exc)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            self.default_exception_handler(context)
        else:
            self._exception_handler(self, context)

    # --- what a workflow cannot do ------------------------------------------------

    def run_forever(self) -> None:
        raise RuntimeError("the workflow event loop is driven by the replay session")

    def run_until_complete(self, future: Any) -> Any:
        raise RuntimeError("the workflow event loop is driven by the replay session")

    def stop(self) -> None:
        pass

    async def shutdown_asyncgens(self) -> None:
        self.close_asyncgens()

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        pass

    # Executors, sockets, pipes, subprocesses and signals: refused with a clear error.
    run_in_executor = _unavailable("run_in_executor")  # type: ignore[assignment]
    set_default_executor = _unavailable("set_default_executor")
    getaddrinfo = _unavailable("getaddrinfo")
    getnameinfo = _unavailable("getnameinfo")
    create_connection = _unavailable("create_connection")
    create_server = _unavailable("create_server")
    sendfile = _unavailable("sendfile")
    start_tls = _unavailable("start_tls")
    create_unix_connection = _unavailable("create_unix_connection")
    create_unix_server = _unavailable("create_unix_server")
    connect_accepted_socket = _unavailable("connect_accepted_socket")
    create_datagram_endpoint = _unavailable("create_datagram_endpoint")
    connect_read_pipe = _unavailable("connect_read_pipe")
    connect_write_pipe = _unavailable("connect_write_pipe")
    subprocess_shell = _unavailable("subprocess_shell")
    subprocess_exec = _unavailable("subprocess_exec")
    add_reader = _unavailable("add_reader")  # type: ignore[assignment]
    remove_reader = _unavailable("remove_reader")
    add_writer = _unavailable("add_writer")  # type: ignore[assignment]
    remove_writer = _unavailable("remove_writer")
    sock_recv = _unavailable("sock_recv")
    sock_recv_into = _unavailable("sock_recv_into")
    sock_recvfrom = _unavailable("sock_recvfrom")
    sock_recvfrom_into = _unavailable("sock_recvfrom_into")
    sock_sendall = _unavailable("sock_sendall")
    sock_sendto = _unavailable("sock_sendto")
    sock_connect = _unavailable("sock_connect")
    sock_accept = _unavailable("sock_accept")
    sock_sendfile = _unavailable("sock_sendfile")
    add_signal_handler = _unavailable("add_signal_handler")  # type: ignore[assignment]
    remove_signal_handler = _unavailable("remove_signal_handler")


# --- asyncio.as_completed -----------------------------------------------------------------

_stdlib_as_completed = asyncio.as_completed


@functools.wraps(_stdlib_as_completed)
def deterministic_as_completed(fs: Iterable[Awaitable[_T]], *, timeout: float | None = None) -> Any:
    """``asyncio.as_completed``, with tasks started in the caller's order on a workflow loop.

    The standard version wraps its inputs in tasks while iterating ``set(fs)``; for
    plain coroutines (hashed by address) that starts them in an order that changes
    between replays, and with it the order of the durable calls they make. On a
    ``DeterministicEventLoop`` the inputs become tasks first, in the order given
    (duplicates once), and the standard function runs on those; everywhere else
    this is exactly the standard function. Installed as ``asyncio.as_completed``
    when this module is imported (before any workflow module is).
    """
    loop = asyncio.events._get_running_loop()
    if isinstance(loop, DeterministicEventLoop) and not (
        asyncio.isfuture(fs) or asyncio.iscoroutine(fs)
    ):
        fs = [asyncio.ensure_future(f, loop=loop) for f in dict.fromkeys(fs)]
    return _stdlib_as_completed(fs, timeout=timeout)


def _install_deterministic_as_completed() -> None:
    if asyncio.as_completed is not deterministic_as_completed:
        asyncio.as_completed = deterministic_as_completed  # type: ignore[assignment]
        asyncio.tasks.as_completed = deterministic_as_completed  # type: ignore[assignment]


_install_deterministic_as_completed()
