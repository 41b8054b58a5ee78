"""``WorkflowEnv``: an isolated world with an in-process worker, for tests.

The worker runs on its own event loop in a background thread, so tests stay plain
functions (no async plugin needed) and every helper is a blocking call; async tests
may call them too. With time skipping (the default on the memory and local worlds)
a ``VirtualClock`` is installed for the environment's life, and the clock jumps to
the next due timer whenever the worker is idle while the test waits in ``result``,
``run``, ``wait_for_hook`` or ``stream``. A timer is a queued message becoming
visible (a sleep, a retry, a run's deadline) or a schedule's next tick: the clock
stops at each tick and the environment fires it at once, so a schedule starts one
run per tick that virtual time passes, as a worker running all along would.

Alternatives rejected: running the worker on the test's own event loop (every test
would need an async plugin, and a sync test could not wait without blocking the
worker); skipping time whenever the worker is idle (a test that resumes a hook after
``start()`` would find its 30-day timeout already fired).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from wfkit.runtime.api.client import HookInfo, Run, resume_hook_sync, start_sync
from wfkit.runtime.api.streams import decode_chunk, stream_name
from wfkit.runtime.api.workflow import parse_duration
from wfkit.runtime.flow.queues import ADMISSION_QUEUE_PREFIX
from wfkit.runtime.flow.schedules import fire_due_schedules, next_due_tick
from wfkit.runtime.loading import registry
from wfkit.runtime.tools.tables import timeline
from wfkit.runtime.world_config import using_world
from wfkit.testing import assertions
from wfkit.testing.clock import TimeSkipper, VirtualClock
from wfkit.testing.mocks import StepMock, check_replacement, resolve_step_id
from wfkit.worlds import create_world
from wfkit.worlds.base import (
    RUN_TERMINAL,
    Event,
    Hook,
    HookNotFoundError,
    RunNotFoundError,
    World,
    use_clock,
    utc_now,
)

__all__ = ["WorkflowEnv", "WorldKind", "create_test_world"]

WorldKind = Literal["memory", "local", "postgres"]
WORLD_KINDS: tuple[WorldKind, ...] = ("memory", "local", "postgres")


def create_test_world(
    kind: str, *, directory: Path | None = None, postgres_url: str | None = None
) -> World:
    """A fresh, empty world for one test.

    Args:
        kind: ``memory``, ``local`` (a SQLite file in ``directory``) or ``postgres``
            (a schema of its own on ``postgres_url``, dropped by ``WorkflowEnv.close``).
        directory: where the local world's file goes.
        postgres_url: the Postgres server.

    Raises:
        ValueError: an unknown kind, or a missing directory or URL.
    """
    if kind == "memory":
        return create_world("memory")
    if kind == "local":
        if directory is None:
            raise ValueError("the local test world needs a directory for its SQLite file")
        return create_world(f"sqlite:///{directory / 'wfkit.db'}")
    if kind == "postgres":
        if not postgres_url:
            raise ValueError(
                "the postgres test world needs a URL: --wfkit-postgres-url or "
                "WFKIT_TEST_POSTGRES_URL"
            )
        joiner = "&" if "?" in postgres_url else "?"
        return create_world(f"{postgres_url}{joiner}schema=wfkit_test_{uuid.uuid4().hex[:12]}")
    raise ValueError(f"unknown test world {kind!r}; choose one of {', '.join(WORLD_KINDS)}")


class WorkflowEnv:
    """A world with a worker running in the background, and helpers bound to it.

    Use as a context manager (or call ``close()``); the ``wf_env`` pytest fixture
    does both.

    Args:
        world: the world (the environment closes it on ``close()``).
        time_skipping: install a virtual clock that skips idle time while the test
            waits. Needs a queue that can say when its next message is due (the
            memory and local worlds; Postgres reads its server's clock).
        worker_options: extra ``Worker`` arguments.

    Raises:
        ValueError: time skipping asked for on a world that cannot skip.
    """

    def __init__(
        self,
        world: World,
        *,
        time_skipping: bool = True,
        worker_options: Mapping[str, Any] | None = None,
    ) -> None:
        next_visible_at = getattr(world.queue, "next_visible_at", None)
        # The queues' admission tokens are messages no worker takes as work: never due.
        next_due: Callable[[], float | None] | None = (
            None
            if next_visible_at is None
            else functools.partial(next_visible_at, excluding=(ADMISSION_QUEUE_PREFIX,))
        )
        if time_skipping and next_due is None:
            name = getattr(world, "name", type(world).__name__)
            raise ValueError(
                f"time skipping needs the memory or local world, not {name} (its queue "
                "runs on the database server's clock); use @pytest.mark.wfkit(real_time=True)"
            )
        self.world = world
        self.clock: VirtualClock | None = VirtualClock() if time_skipping else None
        self._skipper = (
            TimeSkipper(self.clock, lambda: self._next_due(next_due))
            if self.clock is not None and next_due is not None
            else None
        )
        self._worker_options = dict(worker_options or {})
        self._stack = ExitStack()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._crash: BaseException | None = None
        self._closed = False

    # --- life ---------------------------------------------------------------------------

    def __enter__(self) -> WorkflowEnv:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> WorkflowEnv:
        """Install the clock, bind the process-wide world and start the worker.

        Raises:
            RuntimeError: the worker could not start (its error is the cause).
        """
        if self.clock is not None:
            self._stack.enter_context(use_clock(self.clock))
        self._stack.enter_context(using_world(self.world))
        self._thread = threading.Thread(target=self._serve, name="wfkit-test-worker", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._crash is not None:
            self.close()
            raise RuntimeError(f"the test worker did not start: {self._crash}") from self._crash
        return self

    def close(self) -> None:
        """Stop the worker (joining its thread), undo mocks and the clock, close the world."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._loop is not None and self._stop is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self._stop.set)
                except RuntimeError:  # the loop ended on its own (a crash)
                    pass
            if self._thread is not None:
                self._thread.join(timeout=30)
        finally:
            self._stack.close()
            drop = getattr(self.world, "drop_schema", None)
            if callable(drop):
                drop()
            self.world.close()

    def _serve(self) -> None:
        try:
            asyncio.run(self._work())
        except BaseException as exc:  # reported by open() or the next wait
            self._crash = exc
        finally:
            self._ready.set()

    async def _work(self) -> None:
        from wfkit.runtime.engine.worker import Worker

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        options: dict[str, Any] = {"shutdown_grace": 2.0, "sweep_interval": 5.0}
        if self._skipper is not None:
            # Waits are never waited for in a handler: the handler would hold its
            # message (the worker looks busy) and the clock could not jump.
            options.update(inline_wait_seconds=0.0, on_idle=self._on_idle)
        options.update(self._worker_options)
        worker = Worker(world=self.world, **options)
        self._ready.set()
        try:
            await worker.run(stop_event=self._stop)
        finally:
            worker.close()

    def _check_worker(self) -> None:
        if self._crash is not None:
            raise RuntimeError(f"the test worker crashed: {self._crash!r}") from self._crash
        if self._closed:
            raise RuntimeError("this workflow environment is closed")

    def _waiting(self, *, until: Callable[[], bool] | None = None) -> Any:
        """Where the test blocks (until ``until()``, when given): time may skip inside
        (when skipping is on) while it is false."""
        if self._skipper is None:
            return ExitStack()
        return self._skipper.unlocked(until=until)

    def _next_due(self, next_message: Callable[[], float | None]) -> float | None:
        """When the next timer falls due: a queued message, or a schedule tick not yet
        fired (epoch seconds)."""
        message = next_message()
        tick = next_due_tick(self.world)
        times = [t for t in (message, tick.timestamp() if tick else None) if t is not None]
        return min(times, default=None)

    def _on_idle(self) -> bool:
        """The worker's idle hook: fire the schedule ticks the clock reached (at once,
        not at the worker's next flow-control pass), else let the skipper jump."""
        assert self._skipper is not None
        return bool(fire_due_schedules(self.world)) or self._skipper.on_idle()

    def _run_ended(self, run_id: str) -> bool:
        """Whether the run ended (or never existed: ``result`` then says so)."""
        try:
            return self.world.runs.get(run_id).status in RUN_TERMINAL
        except RunNotFoundError:
            return True

    def _hook_is_live(self, token: str) -> bool:
        try:
            self.world.hooks.get_by_token(token)
        except HookNotFoundError:
            return False
        return True

    # --- time -----------------------------------------------------------------------------

    @property
    def time_skipping(self) -> bool:
        """Whether idle time is skipped."""
        return self.clock is not None

    def now(self) -> datetime:
        """The time the environment's runs see (virtual with time skipping)."""
        return utc_now() if self.clock is None else self.clock.now()

    def skip(self, duration: str | float | timedelta) -> None:
        """Move the clock forward by ``duration`` (``"1h"``, seconds, a timedelta) and let
        the worker see it: timers due by then fire. The clock stops at each schedule
        tick on the way and fires it, so every tick passed starts its run.

        Raises:
            RuntimeError: time skipping is off.
            ValueError, TypeError: a malformed or negative duration.
        """
        if self.clock is None:
            raise RuntimeError("skip() needs time skipping (this test runs in real time)")
        total = parse_duration(duration)
        before = self.clock.skipped
        target = self.clock.now() + total
        tick = next_due_tick(self.world)
        while tick is not None and tick <= target:
            self.clock.skip_to(tick.timestamp())
            fire_due_schedules(self.world)
            following = next_due_tick(self.world)
            if following is not None and following <= tick:
                break  # the tick was not recorded (logged): the worker's passes retry it
            tick = following
        self.clock.skip(total - (self.clock.skipped - before))

    # --- runs -----------------------------------------------------------------------------

    def start(self, workflow: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Run[Any]:
        """Start a run of ``workflow`` (function or ID) in this environment's world."""
        self._check_worker()
        return start_sync(workflow, *args, world=self.world, **kwargs)

    def get_run(self, run_id: str) -> Run[Any]:
        """A handle on a run of this environment's world."""
        return Run(run_id, self.world)

    def result(self, run: Run[Any] | str, *, timeout: float = 30.0) -> Any:
        """Wait for the run to end (skipping idle time) and return its result.

        Args:
            run: the run or its id.
            timeout: real seconds to wait.

        Raises:
            WorkflowRunFailedError: the run failed (``.cause`` is the workflow's error).
            WorkflowRunCancelledError: the run was cancelled.
            TimeoutError: it did not end in time; the message says what it waits on.
        """
        run_id = run if isinstance(run, str) else run.run_id
        deadline = time.monotonic() + timeout
        delay = 0.002
        with self._waiting(until=lambda: self._run_ended(run_id)):
            while not self._run_ended(run_id):
                self._check_worker()
                if time.monotonic() > deadline:
                    raise TimeoutError(self._still_waiting(run_id, timeout))
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        return Run(run_id, self.world).result_sync(timeout=5)

    def run(
        self, workflow: Callable[..., Any] | str, *args: Any, timeout: float = 30.0, **kwargs: Any
    ) -> Any:
        """Start a run and return its result (``start`` then ``result``)."""
        return self.result(self.start(workflow, *args, **kwargs), timeout=timeout)

    def _still_waiting(self, run_id: str, timeout: float) -> str:
        record = self.world.runs.get(run_id)
        hooks = [h.token for h in self.world.hooks.list(run_id=run_id) if h.status == "active"]
        waits = [w for w in self.world.waits.list(run_id) if w.status == "waiting"]
        on = []
        if hooks:
            on.append(f"hooks {hooks}")
        if waits:
            on.append(f"{len(waits)} timer(s)")
        what = f"; it waits on {' and '.join(on)}" if on else ""
        return f"run {run_id} did not end within {timeout} s (status {record.status}){what}"

    # --- hooks and streams ---------------------------------------------------------------

    def wait_for_hook(self, token: str, *, timeout: float = 10.0) -> Hook:
        """Wait until a live hook holds ``token`` (skipping idle time until it does).

        Raises:
            HookNotFoundError: no hook appeared within ``timeout`` real seconds.
        """
        deadline = time.monotonic() + timeout
        with self._waiting(until=lambda: self._hook_is_live(token)):
            while True:
                self._check_worker()
                try:
                    return self.world.hooks.get_by_token(token)
                except HookNotFoundError:
                    if time.monotonic() > deadline:
                        raise HookNotFoundError(
                            f"no hook with token {token!r} appeared within {timeout} s"
                        ) from None
                    time.sleep(0.002)

    def resume_hook(self, token: str, payload: Any, *, timeout: float = 10.0) -> HookInfo:
        """Deliver ``payload`` to the hook holding ``token``, once it exists.

        Raises:
            HookNotFoundError: no hook held the token within ``timeout`` seconds.
        """
        self.wait_for_hook(token, timeout=timeout)
        return resume_hook_sync(token, payload, world=self.world)

    def stream(
        self, run: Run[Any] | str, namespace: str | None = None, *, timeout: float = 10.0
    ) -> list[Any]:
        """Every chunk of a run's stream (default or ``namespace``), once it is closed.

        Raises:
            TimeoutError: the stream did not close within ``timeout`` real seconds (the
                message shows the chunks read so far).
        """
        run_id = run if isinstance(run, str) else run.run_id
        name = stream_name(run_id, namespace)
        chunks: list[Any] = []
        index = 0
        deadline = time.monotonic() + timeout
        with self._waiting():
            while True:
                page = self.world.streams.read(run_id, name, start_index=index)
                chunks.extend(decode_chunk(data) for data in page.chunks)
                index = page.next_index
                if page.closed and not page.chunks:
                    return chunks
                if page.chunks:
                    continue
                self._check_worker()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"stream {namespace or 'default'!r} of run {run_id} did not close "
                        f"within {timeout} s; read so far: {chunks!r}"
                    )
                self.world.streams.wait(run_id, name, after_index=index, timeout=min(left, 0.05))

    # --- the log --------------------------------------------------------------------------

    def events(self, run: Run[Any] | str) -> list[Event]:
        """The run's event log."""
        return self.world.events.list(run if isinstance(run, str) else run.run_id)

    def steps(self, run: Run[Any] | str, *, full_ids: bool = False) -> list[str]:
        """The steps the run called, in log order (qualnames, or IDs with ``full_ids``)."""
        run_id = run if isinstance(run, str) else run.run_id
        return assertions.step_names(self.world, run_id, full_ids=full_ids)

    def assert_steps(self, run: Run[Any] | str, expected: list[str]) -> None:
        """Assert the run called exactly ``expected`` steps, in order (see
        ``assertions.assert_steps``)."""
        run_id = run if isinstance(run, str) else run.run_id
        assertions.assert_steps(self.world, run_id, expected)

    def timeline(self, run: Run[Any] | str) -> str:
        """The run's event log as a readable timeline."""
        return timeline(self.world, run if isinstance(run, str) else run.run_id)

    def export(self, run: Run[Any] | str, path: str | Path) -> Path:
        """Write the run's log as ``wfkit export`` does (a golden log for ``assert_replays``)."""
        run_id = run if isinstance(run, str) else run.run_id
        return assertions.export_golden(self.world, run_id, path)

    def assert_replays(self, source: str | Path) -> None:
        """Assert that golden logs still replay against the loaded build (see
        ``assertions.assert_replays``)."""
        assertions.assert_replays(source)

    # --- mocks ----------------------------------------------------------------------------

    def mock_step(self, step: Callable[..., Any] | str, replacement: Any) -> StepMock:
        """Run ``replacement`` instead of the step's body until the environment closes.

        Args:
            step: the step function (as the test imported it) or its ID.
            replacement: a sync or async callable taking the step's arguments; what it
                returns (or raises) is the step's outcome, recorded in the log as usual.

        Returns:
            The mock (its ``calls`` record every attempt's arguments).

        Raises:
            ValueError: ``step`` is not a step of the loaded build, or ``replacement``
                is not callable.
        """
        mock = StepMock(resolve_step_id(step), check_replacement(replacement))
        self._stack.enter_context(registry.replaced_step(mock.step_id, mock))
        return mock
