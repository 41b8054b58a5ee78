"""The worker: consume workflow and step messages, hold their leases, shut down cleanly.

One asyncio loop per worker process. Messages are leased from the world's queue
(``__wkf_workflow_*`` and ``__wkf_step_*``) up to ``concurrency`` at a time;
each is handled in its own task while the worker extends its lease, then acked
(or nacked with a delay: a retry that is not yet due, or an unexpected error,
backing off). Workflow messages go to the ``Orchestrator``, which keeps
suspended replays alive between messages and runs new steps inline; step
messages go to ``executor.handle_step_message``.

Short world calls (a SQLite commit, a lease) run directly on the loop: they take
microseconds and a thread hop would cost more. Blocking waits never do: the
loop polls with ``wait_seconds=0`` and sleeps on an event that local enqueues set.

Self-healing: a message whose worker died is redelivered when its lease lapses;
a lost message is found by ``heal`` (every ``sweep_interval``): runs that are
not terminal and have no live message get a workflow message again.

Logs (``wfkit.worker``): a lease that lapsed before the worker renewed it (the
message may be handled twice), a run the sweep found without a message, a
message whose handling failed; each names the run (and step).

Deployments (``serving``): a worker receives only the queues of the deployments it
serves, and handles each message in its deployment's registry scope, so every run
runs the code it started on; the sweep also takes on kept deployments with runs in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from wfkit.runtime.engine.executor import handle_step_message
from wfkit.runtime.engine.messages import (
    StepMessage,
    WorkflowMessage,
    read_message,
    workflow_message,
)
from wfkit.runtime.engine.orchestrator import Orchestrator
from wfkit.runtime.engine.serving import ServedDeployments
from wfkit.runtime.flow.upkeep import FlowUpkeep
from wfkit.runtime.loading import registry
from wfkit.runtime.observability import metrics
from wfkit.runtime.observability.logs import log_fields
from wfkit.runtime.world_config import resolve_world
from wfkit.worlds.base import (
    RUN_TERMINAL,
    QueueMessage,
    Run,
    RunStatus,
    World,
    WorldError,
    WorldUnavailableError,
    new_id,
)

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_FEED_DEADLINE", "Worker", "heal"]

log = logging.getLogger("wfkit.worker")


def heal(world: World) -> int:
    """Re-enqueue a workflow message for every unfinished run that has none.

    Runs waiting on a hook get one too (the replay finds nothing to do and the
    message is acked): cheap, and it also recovers a hook payload whose wake-up
    was lost. The idempotency key keeps repeated sweeps from piling up messages.
    Each re-enqueued run is logged: a warning when it waits on no hook (its
    message was lost), a debug record when it does (the sweep's routine).

    Returns:
        How many runs were re-enqueued.
    """
    live = world.queue.live_run_ids()
    count = 0
    unfinished: tuple[RunStatus, ...] = ("pending", "running")
    for status in unfinished:
        for run in world.runs.list(status=status, limit=1_000_000):
            if run.run_id in live or (run.status == "pending" and run.queue_name is not None):
                continue  # a run waiting in a named queue gets its message when admitted
            message = workflow_message(
                run.workflow_name,
                run.run_id,
                deployment_id=run.deployment_id,
                idempotency_key=f"heal:{run.run_id}",
            )
            world.queue.enqueue(
                message.queue, message.payload, idempotency_key=message.idempotency_key
            )
            count += 1
            _log_reenqueued(world, run.run_id, run.workflow_name)
    if count:
        log.info("heal: re-enqueued %d run(s) with no live message", count)
    return count


def _log_reenqueued(world: World, run_id: str, workflow_name: str) -> None:
    waits_on_hook = any(hook.status == "active" for hook in world.hooks.list(run_id=run_id))
    log.log(
        logging.DEBUG if waits_on_hook else logging.WARNING,
        "sweep: re-enqueued run %s (%s), which had no live queue message%s",
        run_id,
        workflow_name,
        " (it waits on a hook)" if waits_on_hook else "",
        extra=log_fields(run_id, workflow=workflow_name),
    )


def _message_fields(message: QueueMessage) -> dict[str, object]:
    """Log fields naming a message's run and step, read leniently (for logs only: a
    malformed payload still gets its record)."""
    run_id = message.run_id or message.payload.get("run_id")
    step_id = message.payload.get("step_id")
    return log_fields(
        str(run_id) if run_id is not None else None,
        str(step_id) if step_id is not None else None,
        message_id=message.message_id,
    )


def _warn_failed(doing: str, message: QueueMessage, exc: Exception, then: str = "") -> None:
    """One warning line: ``<doing> message <id> (<run, step>) failed: <exc><then>``."""
    fields = _message_fields(message)
    log.warning(
        "%s message %s (%s) failed: %s%s",
        doing,
        message.message_id,
        _naming(fields),
        exc,
        then,
        extra=fields,
    )


def _naming(fields: dict[str, object]) -> str:
    """``run R`` or ``run R, step S``, for messages."""
    step = f", step {fields['step_id']}" if "step_id" in fields else ""
    return f"run {fields['run_id']}{step}"


@dataclass(eq=False)
class _Lease:
    """A message being handled, and when this worker last renewed its lease
    (``time.monotonic``)."""

    message: QueueMessage
    renewed_at: float
    lapse_reported: bool = False
    renewal_error: WorldError | None = None
    """Why the last renewal failed (None: it succeeded, or none was tried yet)."""


_FLOW_IDLE_SECONDS = 0.4

DEFAULT_CONCURRENCY = 64
"""Messages a worker handles at once. Group commit (``group_commit``) puts the writes
of the runs being driven together into shared transactions, so more runs at once
means fewer commits per step: bench.scale (2 workers, 2,000 runs x 5 steps, a busy
machine, noisy) measured Postgres 102 / 134 / 116 steps/s at 16 / 64 / 128 and
local 673 / 616 / 630 (flat within noise); the median wait for a run's first step
fell from 16 to 64 (Postgres 35 s -> 17 s, local 3.2 s -> 2.5 s)."""
"""The longest pause between flow-control passes while no run waits in a declared
queue (a run started then waits at most this long for admission)."""

_NOT_SERVED_RETRY_SECONDS = 5.0
"""A message this worker received but does not serve (its deployment was unloaded in
between) becomes visible again after this long."""


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


DEFAULT_FEED_DEADLINE = 5.0
"""Seconds one feed turn may run (Temporal's deadlock detector allows 2 s, but fails
only the workflow task, which it retries; here the run fails, so the bound leaves
room for a loaded machine). A turn is one event and the workflow code it resumes, so a
long replay is never near it."""


def _feed_deadline(given: float | None) -> float | None:
    """The feed deadline in force: ``given``, else ``WFKIT_FEED_DEADLINE``, else the
    default; None when it is 0 (no bound)."""
    if given is None:
        raw = os.environ.get("WFKIT_FEED_DEADLINE", "").strip()
        try:
            given = float(raw) if raw else DEFAULT_FEED_DEADLINE
        except ValueError:
            log.warning(
                "WFKIT_FEED_DEADLINE=%r is not a number of seconds; using %g s",
                raw,
                DEFAULT_FEED_DEADLINE,
            )
            given = DEFAULT_FEED_DEADLINE
    return given if given > 0 else None


class Worker:
    """Consumes a world's queues and runs workflows and steps.

    Args:
        world: the world (a World, a spec string, or None for ``get_world()``).
        build_dir: a build output to load and serve (``wfkit.runtime.loading.loader.load_build``).
        builds: more builds to load and serve, oldest first (``build_dir`` counts as the
            newest). With neither, the worker serves every build this process loads.
        serve_unpinned: also serve runs recorded without a deployment (wfkit 0.1.0's),
            with the newest deployment.
        adopt: deployments whose runs this worker also serves with its newest code, or
            ``"all"`` (every other deployment); see ``serving``.
        kept_root: serve the deployments kept under this project's ``.wfkit/deployments``
            before the worker started that have runs in flight (and keep the given builds
            that are its own ``.wfkit/build`` there); None: none.
        concurrency: messages handled at once.
        lease_seconds: how long a received message stays invisible; kept
            extended while it is being handled.
        poll_interval: longest sleep between polls of an empty queue.
        sweep_interval: seconds between ``heal`` sweeps (0 disables them).
        replay_cache: keep suspended replays alive (default: ``WFKIT_REPLAY_CACHE``, on).
        cache_size: suspended replays kept (LRU).
        inline_steps: run new steps in this worker right after their suspension.
        step_concurrency: steps running inline at once in this worker.
        provisional: group-commit step outcomes with the workflow's next events.
        shutdown_grace: seconds in-flight messages get to finish on shutdown
            before they are cancelled and nacked.
        inline_wait_seconds: a durable wait due within this many seconds is
            waited for in the handler rather than through a delayed message.
        feed_deadline: seconds a workflow may run without yielding to the replay loop
            (per event fed) before its run fails with ``WorkflowDeadlockError``, so a
            busy loop cannot tie up the worker; 0 disables it (default:
            ``WFKIT_FEED_DEADLINE``, else ``DEFAULT_FEED_DEADLINE``).
        url: deployment URL for workflow metadata.
        on_idle: called when the queue has nothing visible for this worker and
            nothing is in flight (no message handled, no step running inline);
            returns True when it made work visible (the testing kit's clock
            jumped to the next due timer), so the worker polls again at once.
        flow_interval: seconds between flow-control passes (admitting the runs of the
            named queues this process declares, firing due schedule ticks); 0: none.
    """

    def __init__(
        self,
        world: World | str | None = None,
        build_dir: str | Path | None = None,
        *,
        builds: Sequence[str | Path] = (),
        serve_unpinned: bool = True,
        kept_root: Path | None = None,
        adopt: Sequence[str] = (),
        concurrency: int = DEFAULT_CONCURRENCY,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.05,
        sweep_interval: float = 60.0,
        replay_cache: bool | None = None,
        cache_size: int = 1000,
        inline_steps: bool = True,
        step_concurrency: int = 1000,
        provisional: bool = True,
        shutdown_grace: float = 10.0,
        inline_wait_seconds: float = 1.0,
        feed_deadline: float | None = None,
        url: str = "",
        on_idle: Callable[[], bool] | None = None,
        flow_interval: float = 0.1,
    ) -> None:
        given = [*builds, *([build_dir] if build_dir is not None else [])]
        self.serving = ServedDeployments(
            given, serve_unpinned=serve_unpinned, kept_root=kept_root, adopt=adopt
        )
        self.world = resolve_world(world)
        self.concurrency = max(1, concurrency)
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self.shutdown_grace = shutdown_grace
        self.url = url
        cache = _env_flag("WFKIT_REPLAY_CACHE", True) if replay_cache is None else replay_cache
        self.orchestrator = Orchestrator(
            self.world,
            replay_cache=cache,
            cache_size=cache_size,
            inline_steps=inline_steps,
            step_concurrency=step_concurrency,
            provisional=provisional,
            lease_seconds=lease_seconds,
            url=url,
            inline_wait_seconds=inline_wait_seconds,
            feed_deadline=_feed_deadline(feed_deadline),
            on_enqueue=self._wake,
        )
        self._on_idle = on_idle
        self._inflight: set[asyncio.Task[None]] = set()
        self._leases: set[_Lease] = set()
        """The messages being handled (``_renew_leases`` extends their leases)."""
        self._renewal: asyncio.TimerHandle | None = None
        self._renewal_loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._kick_loop: asyncio.AbstractEventLoop | None = None
        self._last_sweep = time.monotonic()
        self._sweeping: asyncio.Task[None] | None = None
        self.flow_interval = flow_interval
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id('wrk')}"
        self.flow = FlowUpkeep(self.world, self.worker_id)
        self._serve_kept()

    # --- public ---------------------------------------------------------------------

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Work until ``stop_event`` is set (or SIGTERM/SIGINT when none is given).

        On stop, no new messages are taken; in-flight ones get ``shutdown_grace``
        seconds to finish, then are cancelled and nacked (redelivered at once).
        """
        stop = stop_event or asyncio.Event()
        restore = self._install_signals(stop) if stop_event is None else None
        try:
            await self._loop(lambda: stop.is_set(), stop=stop)
        finally:
            await self._shutdown()
            if restore is not None:
                restore()

    async def run_until_complete(self, run_id: str, timeout: float | None = None) -> None:
        """Work until the run ``run_id`` is completed, failed or cancelled.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def done() -> bool:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish within {timeout} s")
            return self.world.runs.get(run_id).status in RUN_TERMINAL

        try:
            await self._loop(done)
        finally:
            await self._shutdown()

    async def drain(self, timeout: float | None = None) -> None:
        """Work until no visible message is left and nothing is in flight (tests).

        Delayed messages (sleeps, retries not yet due) are not waited for.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("drain did not finish in time")
            received = self._poll()
            if not received and not self._inflight:
                return
            await self._idle(self.poll_interval if not received else 0)

    async def poll_once(self) -> int:
        """Lease and dispatch what is visible now; how many messages were taken."""
        return self._poll()

    def close(self) -> None:
        """Close cached replays (the world stays open: it belongs to the caller)."""
        self.orchestrator.close()

    # --- the loop -----------------------------------------------------------------------

    async def _loop(
        self, finished: Callable[[], bool], *, stop: asyncio.Event | None = None
    ) -> None:
        self._serve_kept()
        metrics.serve_queue_depth(self.world)
        upkeep = asyncio.create_task(self._flow_upkeep()) if self.flow_interval > 0 else None
        try:
            await self._work(finished, stop)
        finally:
            if upkeep is not None:
                upkeep.cancel()
                await asyncio.gather(upkeep, return_exceptions=True)
            metrics.stop_serving_queue_depth(self.world)

    async def _flow_upkeep(self) -> None:
        """Flow-control passes (in a thread: they read and write the world) for as long
        as the worker works: every ``flow_interval`` while runs wait in its queues,
        backing off to ``_FLOW_IDLE_SECONDS`` while none do."""
        delay = self.flow_interval
        while True:
            try:
                done = await asyncio.to_thread(self.flow.run_once)
            except Exception as exc:  # a failed pass must not stop the worker
                log.warning("flow-control pass failed: %s", exc)
                done = None
            if done:
                self._wake()
            if done is None:
                delay = min(delay * 2, max(self.flow_interval, _FLOW_IDLE_SECONDS))
            else:
                delay = self.flow_interval
            await asyncio.sleep(delay)

    async def _work(self, finished: Callable[[], bool], stop: asyncio.Event | None) -> None:
        while not finished():
            received = self._poll()
            self._maybe_sweep()
            if received:
                await asyncio.sleep(0)
            elif self._inflight:
                await self._idle(self.poll_interval, stop)
            elif self._idle_hook_made_work():
                continue
            else:
                # Nothing in flight: block in a thread on the queue itself, so a
                # message enqueued by another process is taken at once, not at the
                # next poll (worlds wake blocked receivers on enqueue).
                await self._poll_blocking()

    def _idle_hook_made_work(self) -> bool:
        """Call ``on_idle`` when truly idle; whether it made work visible."""
        if self._on_idle is None or self.orchestrator.inline_steps_running:
            return False
        return self._on_idle()

    def _poll(self) -> int:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        try:
            messages = self.world.queue.receive(
                self.serving.prefixes(), lease_seconds=self.lease_seconds, max_messages=free
            )
        except WorldError as exc:
            log.warning("receive failed: %s", exc)
            return 0
        self._dispatch_all(messages)
        return len(messages)

    async def _poll_blocking(self) -> int:
        try:
            messages = await asyncio.to_thread(
                self.world.queue.receive,
                self.serving.prefixes(),
                lease_seconds=self.lease_seconds,
                max_messages=self.concurrency,
                wait_seconds=self.poll_interval,
            )
        except WorldError as exc:
            log.warning("receive failed: %s", exc)
            await asyncio.sleep(self.poll_interval)
            return 0
        self._dispatch_all(messages)
        return len(messages)

    def _dispatch_all(self, messages: list[QueueMessage]) -> None:
        for message in messages:
            task = asyncio.create_task(
                self._process(message), name=f"wfkit-msg-{message.message_id}"
            )
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        # Poll again at once: a finished message may have enqueued more work (a step's
        # wake-up of its workflow, a handler's hand-off).
        self._wake()

    def _wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    async def _idle(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        if self._kick is None or self._kick_loop is not loop:
            self._kick = asyncio.Event()
            self._kick_loop = loop
        if self._kick.is_set():
            self._kick.clear()
            await asyncio.sleep(0)
            return
        waiters = [asyncio.ensure_future(self._kick.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._kick.clear()

    def _maybe_sweep(self) -> None:
        if self.sweep_interval <= 0:
            return
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        if self._sweeping is None or self._sweeping.done():
            # Off the loop: a sweep lists every unfinished run.
            self._sweeping = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        try:
            if await asyncio.to_thread(heal, self.world):
                self._wake()
        except WorldError as exc:
            log.warning("sweep failed: %s", exc)
        self._serve_kept()

    def _serve_kept(self) -> None:
        """Take on kept deployments with runs in flight (on the loop: it imports code)."""
        try:
            if self.serving.serve_kept_in_flight(self.world):
                self._wake()
        except WorldError as exc:
            log.warning("looking for kept deployments with runs in flight failed: %s", exc)

    # --- one message ----------------------------------------------------------------------

    async def _process(self, message: QueueMessage) -> None:
        lease = _Lease(message, renewed_at=time.monotonic())
        self._leases.add(lease)
        self._schedule_renewal()
        try:
            retry_in = await self._dispatch(message)
        except asyncio.CancelledError:
            self._settle(message, 0.0)
            raise
        except WorldUnavailableError as exc:
            # The database is down or restarting: expected, transient, and the same for
            # every message in flight, so one line each rather than a traceback each.
            _warn_failed("handling", message, exc, "; redelivered later")
            retry_in = min(60.0, 0.1 * 2 ** min(message.attempt, 10))
        except Exception:
            fields = _message_fields(message)
            log.exception(
                "handling message %s (%s) failed; redelivered later",
                message.message_id,
                _naming(fields),
                extra=fields,
            )
            retry_in = min(60.0, 0.1 * 2 ** min(message.attempt, 10))
        finally:
            self._leases.discard(lease)
        self._check_lease(message, lease)
        self._settle(message, retry_in)

    async def _dispatch(self, message: QueueMessage) -> float | None:
        """Handle one message in its deployment's registry scope; None to ack it, else
        seconds until its redelivery."""
        route = read_message(message)
        if route is None:
            log.warning("message on unknown queue %s dropped", message.queue)
            return None
        scope = self.serving.scope_for(route.deployment_id)
        if scope is None:  # not served here (any more): let a worker that serves it take it
            log.warning(
                "message %s is for deployment %r, which this worker does not serve; handed back",
                message.message_id,
                route.deployment_id,
            )
            return _NOT_SERVED_RETRY_SECONDS
        if (
            not route.deployment_id
            and isinstance(route, StepMessage)
            and self.serving.reroute_if_pinned(self.world, message, route)
        ):
            return None  # (a workflow message's handler asks once it has the run's record)
        with registry.using_scope(scope):
            return await self._handle(message, route)

    async def _handle(
        self, message: QueueMessage, route: WorkflowMessage | StepMessage
    ) -> float | None:
        """A workflow message to the orchestrator, a step message to the executor."""
        match route:
            case WorkflowMessage(run_id=run_id, deployment_id=deployment_id):
                moved_if_pinned = None
                if not deployment_id:

                    def moved_if_pinned(run: Run | None) -> bool:
                        return self.serving.reroute_if_pinned(self.world, message, route, run=run)

                await self.orchestrator.handle_workflow_message(
                    run_id, delivery_attempt=message.attempt, moved_if_pinned=moved_if_pinned
                )
                return None
            case StepMessage(run_id=run_id, step_id=step_id) as step:
                if self.orchestrator.is_running_inline(run_id, step_id):
                    # Running inline here already; its handler records it or hands it off.
                    return None
                result = await handle_step_message(self.world, step, url=self.url)
                log.debug("step message %s: %s", message.message_id, result.outcome)
                return result.retry_in
            case unexpected:
                assert_never(unexpected)

    def _settle(self, message: QueueMessage, retry_in: float | None) -> None:
        try:
            if retry_in is None:
                self.world.queue.ack(message.message_id, attempt=message.attempt)
            else:
                self.world.queue.nack(
                    message.message_id, delay_seconds=retry_in, attempt=message.attempt
                )
        except WorldError as exc:
            _warn_failed("settling", message, exc)

    def _renewal_interval(self) -> float:
        return max(0.05, self.lease_seconds / 3)

    def _schedule_renewal(self) -> None:
        """Make sure ``_renew_leases`` runs next on this loop (a worker may outlive
        one ``asyncio.run``: a callback left on a loop that ended never runs)."""
        loop = asyncio.get_running_loop()
        if self._renewal is not None and self._renewal_loop is loop:
            return
        self._renewal = loop.call_later(self._renewal_interval(), self._renew_leases)
        self._renewal_loop = loop

    def _renew_leases(self) -> None:
        """Extend the lease of every message handled for half an interval or more.

        One loop callback every third of a lease for all the messages in flight
        (rather than a keeper task per message, which cost each message a task, a
        timer and a cancellation). A message waits at most one and a half intervals
        (half a lease) between two renewals; with none in flight, nothing is scheduled.
        """
        self._renewal = None
        every = self._renewal_interval()
        try:
            for lease in list(self._leases):
                if time.monotonic() - lease.renewed_at < every / 2:
                    continue  # received since the last pass: not due yet
                message = lease.message
                self._check_lease(message, lease)
                try:
                    self.world.queue.extend_lease(
                        message.message_id,
                        lease_seconds=self.lease_seconds,
                        attempt=message.attempt,
                    )
                except WorldError as exc:
                    lease.renewal_error = exc
                    _warn_failed("extending the lease of", message, exc)
                else:
                    lease.renewed_at = time.monotonic()
                    lease.renewal_error = None
        finally:
            if self._leases:
                self._schedule_renewal()

    def _check_lease(self, message: QueueMessage, lease: _Lease) -> None:
        """Warn (once per message) when its lease lapsed before this worker renewed it:
        the queue may have handed it to another worker, so its work may run twice."""
        unrenewed = time.monotonic() - lease.renewed_at
        if lease.lapse_reported or unrenewed <= self.lease_seconds:
            return
        lease.lapse_reported = True
        fields = _message_fields(message)
        why = (
            "was the event loop blocked?"
            if lease.renewal_error is None
            else f"its renewal failed: {lease.renewal_error}"
        )
        log.warning(
            "lost the lease of message %s (%s): not renewed for %.1f s, past its %.1f s "
            "lease, so another worker may be handling it too (%s)",
            message.message_id,
            _naming(fields),
            unrenewed,
            self.lease_seconds,
            why,
            extra={**fields, "unrenewed_seconds": round(unrenewed, 3)},
        )

    # --- shutdown -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._sweeping is not None:
            await asyncio.gather(self._sweeping, return_exceptions=True)
            self._sweeping = None
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        self.orchestrator.close()

    def _install_signals(self, stop: asyncio.Event) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)

        def restore() -> None:
            for sig in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

        return restore
