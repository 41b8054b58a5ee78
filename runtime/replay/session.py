"""Replay: run a workflow function against its event log, without any I/O.

A ``ReplaySession`` runs the workflow coroutine on a ``DeterministicEventLoop``
(``wfkit.runtime.replay.loop``) and feeds it the run's events in log order. Each step, hook
and wait call gets a correlation id from a stream seeded by the run
(``wfkit.runtime.replay.calls.CorrelationIds``), so the same call order gives the same
ids on every replay; an event is delivered to the call holding its id, the loop
runs until idle, then the next event is delivered. When the log is exhausted
and the loop is idle, the session reports an ``Outcome``: ``Completed``,
``Failed``, or ``Suspended`` with the calls the log cannot answer yet. The
orchestrator writes their creation events (hooks first, then steps, then
waits), runs or enqueues the steps, and feeds the new events to the same
session: the live path. A fresh session fed the whole log (after a restart or
an eviction) is the full-replay path; both give the same outcomes.

Invariants kept (those of the Workflow DevKit's replay):

1. every event is consumed by the call the same deterministic call sequence
   made, or the run fails: ``REPLAY_DIVERGENCE`` when the code no longer makes
   that call (another step, other arguments, another kind of call, no call at
   all: ``wfkit.runtime.replay.divergence``), ``CORRUPTED_EVENT_LOG`` when no
   call of this run could have written the event;
2. results are delivered strictly in log order, one event per idle loop;
3. the session suspends only when the loop is idle, so everything started
   before (a ``gather`` of N steps) is reported in one suspension;
4. a call whose creation event is in the log is never reported again.

Decisions:

- A step call is recorded when the step function is called and returns a future
  (``wfkit.runtime.replay.calls.StepFuture``) that the workflow loop's
  ``create_task`` also runs as a task, so it works wherever asyncio takes a
  coroutine, while its correlation id depends only on call order.
- Tasks and futures of the workflow loop hash by creation order, so sets of them
  (``asyncio.wait``'s results, a ``TaskGroup``'s tasks) iterate the same way on
  every replay (``wfkit.runtime.replay.loop``).
- The workflow starts at the first ``feed``, after any leading ``run_created`` /
  ``run_started``; the clock and the id stream begin at ``run_started``'s time
  (else ``run.started_at``, else ``run.created_at``). Each consumed event moves
  the clock forward to its ``created_at``, never backwards.
- A timer due in the future (``asyncio.sleep(n)``, ``wait_for``/``timeout``
  deadlines, ``sleep()``) is a durable wait. A cancelled timer, like a
  cancelled step (a race's loser), keeps its consumer, so its later events are
  consumed silently; it no longer counts for ``next_wake``. A step or timer
  cancelled before its creation event was written is never reported (an
  ``asyncio.timeout`` block that finishes at once writes nothing).
- A hook disposed before ``hook_created`` is never created; one disposed after
  is reported in ``Suspended.disposals`` until ``hook_disposed`` is fed.
- A ``step_created`` must carry the step id and input the call serialized; a
  ``wait_created`` its ``resume_at`` (to the millisecond); a ``hook_created`` the
  token the workflow chose, if it chose one. Within that, the log's data
  (``resume_at``, a default ``token``) wins over what the call computed.
- A default hook token is random (``secrets``; a token derived from the run id, as
  before 0.2, could be computed by anyone who saw the run). ``create_hook`` takes the
  token its ``hook_created`` recorded when that event is among the events of the
  current feed (a full replay is fed the whole log), so ``hook.token`` is the recorded
  one from the call on; only a hook at the end of the log gets a fresh token. A
  session holding such a fresh, unwritten token is out of step with a log another
  worker extended meanwhile (``holds_unwritten_tokens``): it is replaced by a full replay.
- A step result or hook payload that cannot be deserialized is raised at the
  ``await`` (catchable), not treated as a corrupted log.
- A workflow blocked with nothing durable pending (no uncreated or outstanding
  step, no active wait, no live hook: e.g. awaiting an ``asyncio.Event`` nobody
  sets) fails with ``WorkflowDeadlockError`` instead of hanging forever; so does
  one that never yields to the loop (``while True: pass``, or a loop that only
  awaits ``asyncio.sleep(0)``) for longer than the session's ``feed_deadline``
  per event (``wfkit.runtime.replay.watchdog``), naming the line it was stuck on.
- A session that reached ``Completed``/``Failed`` closes itself and returns
  that outcome to every later ``feed``.
- ``patched(id)`` (``wfkit.patched``) answers from the log, and the first answer
  for an id is kept for the rest of the session. The session knows the events of
  the current ``feed`` it has not delivered yet; after delivering event *i* the
  loop runs until idle, so a call made then sees events *i+1…* of that feed.
  True when a ``patch_marked`` for the id was already delivered, or comes among
  the undelivered events before the next event the *workflow* caused (a creation,
  a disposal, a run ending: outcomes of calls already made -- step attempts and
  results, hook payloads, wait completions, a failure that was retried -- are
  looked past, because they arrive whatever the code, e.g. a gather's other
  branch finishing in the same batch). False when such an event comes first: the
  log was recorded by code without the patch. True too at the *frontier* (no
  such event remains: this code is the first to get here), and then the id is
  *pending*: the outcome carries it
  (``Suspended/Completed/Failed.patches``) and the orchestrator writes its
  ``patch_marked`` first in its next batch, right after the last event fed
  (``expected_last_event_id``), so a later replay finds it at the head of the
  undelivered events at the same point, before any event the workflow caused. A
  written marker fed back
  clears the pending id. A session with pending ids must not be fed anything
  else: an orchestrator whose write was refused replays afresh instead. A
  ``patch_marked`` no call asks about is consumed silently, so a patch check can
  be deleted once no run recorded before it remains (Temporal's
  ``deprecate_patch`` step, implicit).

Alternatives rejected:

- *Re-running the whole function from the start for every new event* (what the
  DevKit does in each invocation): the total work of an N-step run is O(N²).
  A kept-alive session does O(1) work per event, and full replay from the log
  is still the recovery path, so the two must agree (tests check they do).
- *A thread per workflow, blocking on a condition per call*: real concurrency
  in user code, preemption points we do not control, and no way to know that
  the workflow is "idle" without timeouts.
- *Greenlets* (gevent-style stack switching): a C dependency, and it would not
  give users asyncio itself (``gather``, ``wait``, ``TaskGroup``, ``timeout``),
  which we want to work durably.
- *Driving the user's coroutine with ``send()`` by hand*: only works for code
  that awaits our own futures; any ``asyncio`` primitive wants a running loop.
  A real (deterministic) event loop makes the whole asyncio surface work.
- *Recording patched() as a step* (DBOS checkpoints ``patch`` like a step): a
  step has a correlation id from the call order, so the call order of code with
  and without the patch would differ, and it costs a queue round trip. A marker
  read by lookahead keeps the old log's ids intact.
- *A patch version stored on the run* (checked once at start): a run started
  before the patch could never take the new branch, even past the point where
  the old code's log ends; the marker decides at the point of the call.
- *Raising a suspension exception into the workflow when it blocks*: it
  unwinds user code that must stay alive for the linear-cost path. Suspension
  is observed from outside instead (the loop went idle); ``WorkflowSuspension``
  is only thrown into code that keeps calling durable APIs after the session
  is closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import random
import sys
import uuid
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, assert_never

from wfkit.runtime.context import WorkflowMetadata, current_mode, current_step, current_workflow
from wfkit.runtime.errors import WorkflowSuspension
from wfkit.runtime.replay.calls import (
    CallSite,
    CorrelationIds,
    HookCall,
    StepCall,
    StepFuture,
    WaitCall,
    fresh_hook_token,
    set_result_unless_cancelled,
    user_call_site,
)
from wfkit.runtime.replay.delivery import (
    deliver_hook_event,
    deliver_step_event,
    deliver_wait_event,
)
from wfkit.runtime.replay.divergence import (
    RunLabel,
)
from wfkit.runtime.replay.ledger import CallLedger
from wfkit.runtime.replay.loop import DeterministicEventLoop
from wfkit.runtime.replay.outcome import (
    DEADLOCK_MESSAGE,
    Completed,
    Failed,
    Outcome,
    PendingHook,
    PendingStep,
    PendingWait,
    ReplayFailure,
    Suspended,
    WorkflowDeadlockError,
)
from wfkit.runtime.replay.watchdog import WATCHDOG, FeedTurn, stuck_message
from wfkit.runtime.serialization import serialize, serialize_call
from wfkit.worlds.base import Event, Run

__all__ = [
    "Completed",
    "Failed",
    "Outcome",
    "PendingHook",
    "PendingStep",
    "PendingWait",
    "ReplaySession",
    "Suspended",
    "WorkflowDeadlockError",
    "replay",
]

_CallT = TypeVar("_CallT", StepCall, HookCall, WaitCall)

RunEventType = Literal[
    "run_created", "run_started", "run_completed", "run_failed", "run_cancelled", "run_retried"
]


_NOT_THE_WORKFLOWS_DOING = frozenset(
    {
        "run_started",
        "run_failed",  # a failed attempt, followed by the retry that reopened the run
        "run_retried",  # written by ``wfkit retry``, not by the workflow
        "step_started",
        "step_retrying",
        "step_completed",
        "step_failed",
        "hook_received",
        "wait_completed",
    }
)
"""Events ``patched()`` looks past: outcomes of calls already made, written by others
(workers, clients, the clock) whatever the workflow's code. Every other event
(a creation, a disposal, ``run_completed``) is what some code did next."""

_TEARDOWN_BUDGET = 100_000
"""Callbacks ``close()`` runs at most while cancelling (user code may refuse to stop)."""


class ReplaySession:
    """One workflow run replaying on a deterministic loop; fed its log in order.

    Implements ``wfkit.runtime.context.WorkflowContext`` for the code it runs.

    Args:
        workflow_fn: the workflow function (workflow-mode body).
        run: the run record (its id seeds ids and randomness; its start time
            starts the clock when the first feed has no ``run_started``).
        args, kwargs: the workflow's deserialized arguments.
        url: the base URL reported by ``get_workflow_metadata()``.
        feed_deadline: seconds one turn of a feed (an event delivered and the loop run
            until idle) may take before the run fails with ``WorkflowDeadlockError``
            (``watchdog``); None: unbounded.
    """

    def __init__(
        self,
        workflow_fn: Callable[..., Any],
        run: Run,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        url: str = "",
        feed_deadline: float | None = None,
    ) -> None:
        self._fn = workflow_fn
        self._turn = WATCHDOG.watch(feed_deadline) if feed_deadline and feed_deadline > 0 else None
        self._run = run
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._url = url
        self._clock: datetime = run.started_at or run.created_at
        self._loop = DeterministicEventLoop(
            self, self._clock.timestamp(), creation_base=zlib.crc32(run.run_id.encode()) << 20
        )
        self._label = RunLabel(run.workflow_name.rpartition("//")[2], run.run_id)
        self._ledger = CallLedger(CorrelationIds(run.run_id, self._clock), self._label)
        self._random: random.Random | None = None
        self.metadata = self._metadata()
        self._main: asyncio.Task[Any] | None = None
        self._last_event_id: str | None = None
        self._result: Completed | Failed | None = None
        self._closed = False
        self._feeding: Sequence[Event] = ()
        self._next_index = 0
        """``self._feeding[self._next_index:]`` are the undelivered events of this feed."""
        self._patches: dict[str, bool] = {}
        """Each patch id's answer, once given (or once its marker was delivered)."""
        self._pending_patches: list[str] = []
        self._recorded_tokens: dict[str, str] | None = None
        """Default tokens recorded in this feed's ``hook_created`` events, by correlation
        id (built at the first ``create_hook`` without a token in a feed)."""

    # --- the orchestrator's API --------------------------------------------------------

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event fed (consumed), or None."""
        return self._last_event_id

    @property
    def pending_patches(self) -> tuple[str, ...]:
        """Patch ids answered True at the frontier whose ``patch_marked`` is not fed yet."""
        return tuple(self._pending_patches)

    @property
    def holds_unwritten_tokens(self) -> bool:
        """Whether a hook waits for its ``hook_created`` with a token this session drew
        (another worker that wrote that hook first recorded another one)."""
        return any(not c.token_given for c in self._ledger.uncreated_hooks.values())

    @property
    def done(self) -> bool:
        """Whether the session reached ``Completed`` or ``Failed`` (or was closed)."""
        return self._result is not None or self._closed

    def feed(self, events: Sequence[Event]) -> Outcome:
        """Deliver the next events of the log, in order, and report where the workflow is.

        The first call starts the workflow (after any leading ``run_created`` /
        ``run_started``). Every log event must be fed exactly once, in order.
        Once the session is done, returns its final outcome again.

        Returns:
            ``Suspended`` (feed more events later), ``Completed`` or ``Failed``.
        """
        if self._result is not None:
            return self._result
        if self._closed:
            return Failed(RuntimeError("the replay session was closed"), "RUNTIME_ERROR")
        turn = self._turn
        if turn is None:
            return self._feed(events, None)
        outcome = WATCHDOG.feed(turn, self._feed, events)
        return self._stuck(turn) if outcome is None or turn.fired else outcome

    def _feed(self, events: Sequence[Event], turn: FeedTurn | None) -> Outcome:
        """``feed`` proper; ``turn`` (when the feed is watched) is ticked per event."""
        # Results and payloads are decoded here, outside the workflow's context: decode
        # them as workflow code sees its classes (the workflow twins', see loading.twins).
        mode = current_mode.set("workflow")
        self._feeding = events
        try:
            first = 0
            if self._main is None:
                for event in events:  # the run's lifecycle before the workflow starts
                    if event.event_type not in ("run_created", "run_started"):
                        break
                    if turn is not None:
                        turn.ticks += 1
                    if event.event_type == "run_started":
                        self._clock = event.created_at
                    self._last_event_id = event.event_id
                    first += 1
                self._next_index = first
                self._start()
            ready = self._loop.ready
            run_until_idle = self._loop.run_until_idle
            deliver = self._deliver
            for index in range(first, len(events)):
                event = events[index]
                if turn is not None:
                    turn.ticks += 1
                self._next_index = index + 1
                deliver(event)
                self._last_event_id = event.event_id
                if ready:
                    run_until_idle()
            self._next_index = len(events)
            return self._settle()
        except ReplayFailure as failure:
            return self._finish(Failed(failure.error, failure.code))
        except Exception as exc:
            return self._finish(Failed(exc, "RUNTIME_ERROR"))
        finally:
            self._feeding = ()
            self._next_index = 0
            self._recorded_tokens = None
            current_mode.reset(mode)

    def _stuck(self, turn: FeedTurn) -> Failed:
        """The feed ran over its deadline: fail the run, naming the workflow and line.

        The session is closed under a fresh deadline too (its tasks are cancelled
        there, and code that ignores that must not hang the worker either)."""
        failed = Failed(WorkflowDeadlockError(stuck_message(self._label, turn)), "USER_ERROR")
        turn.fired = False
        WATCHDOG.feed(turn, lambda _events, _turn: self._finish(failed), ())
        self._result = failed
        return failed

    def close(self) -> None:
        """Cancel the workflow's tasks, close its async generators and free the loop.

        Durable calls the workflow makes while being cancelled raise
        ``WorkflowSuspension``. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        try:
            for task in list(loop.tasks):
                task.cancel()
            loop.close_asyncgens()
            if loop.ready:  # nothing to cancel or close (a finished run): nothing to run
                loop.run_until_idle(max_callbacks=_TEARDOWN_BUDGET)
        finally:
            loop.close()
            self._ledger.clear()
            # The main task's context holds this session (``current_workflow``): drop the
            # task so the finished session is freed by reference counting.
            self._main = None

    # --- WorkflowContext ------------------------------------------------------------

    def now(self) -> datetime:
        """The workflow clock: the run's start, advanced to each consumed event's time."""
        return self._clock

    @property
    def random(self) -> random.Random:
        """The run's random generator, seeded by its id (at first use: most workflows
        never draw, and seeding costs more than a step's bookkeeping)."""
        rng = self._random
        if rng is None:
            rng = self._random = random.Random(self._run.run_id)
        return rng

    def uuid4(self) -> uuid.UUID:
        """A version-4 UUID from the run-seeded random generator."""
        return uuid.UUID(int=self.random.getrandbits(128), version=4)

    def call_step(
        self,
        step_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        closure: dict[str, Any] | None = None,
        this: Any = None,
    ) -> StepFuture:
        """Record one durable step call now; the returned future gives its result.

        Returns:
            A future: await it, or hand it to anything in asyncio that takes a
            coroutine or a future (the workflow loop's ``create_task`` runs it in a task).

        Raises:
            SerializationError: an argument cannot be serialized (at the call site).
        """
        self._check_open()
        data = serialize_call(args, kwargs, closure=closure, this=this)
        correlation_id = self._ledger.ids.next("step")
        future = StepFuture(self._loop, step_id, correlation_id)
        # From two frames up: this method and the step proxy are never the user's line.
        site = user_call_site(sys._getframe(2))
        self._ledger.add_step(StepCall(correlation_id, step_id, data, future, site))
        return future

    # --- more of the workflow-side API (used by wfkit.runtime.api.workflow) ---------------

    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the branch of patch ``patch_id`` (rule in the module docstring).

        Raises:
            ValueError: ``patch_id`` is not a non-empty string.
        """
        if not isinstance(patch_id, str) or not patch_id:
            raise ValueError(f"a patch id must be a non-empty string, got {patch_id!r}")
        self._check_open()
        known = self._patches.get(patch_id)
        if known is not None:
            return known
        answer = self._marker_ahead(patch_id)
        if answer is None:  # the frontier: this code is the first to get here
            answer = True
            self._pending_patches.append(patch_id)
        self._patches[patch_id] = answer
        return answer

    def _marker_ahead(self, patch_id: str) -> bool | None:
        """True if a marker for ``patch_id`` comes before the next event the workflow
        itself caused, False if such an event comes first, None if none remains."""
        if patch_id in self._pending_patches:
            return True
        for event in self._feeding[self._next_index :]:
            kind = event.event_type
            if kind == "patch_marked":
                if event.data.get("patch_id") == patch_id:
                    return True
            elif kind not in _NOT_THE_WORKFLOWS_DOING:
                return False
        return None

    def create_hook(
        self,
        token: str | None = None,
        metadata: Any = None,
        *,
        is_webhook: bool = False,
        respond_with: Any = None,
    ) -> HookCall:
        """Record one hook; its ``next_payload()`` futures yield the payloads.

        Raises:
            SerializationError: ``metadata`` or ``respond_with`` cannot be serialized.
            ValueError: ``token`` is empty.
        """
        self._check_open()
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError(f"a hook token must be a non-empty string, got {token!r}")
        metadata_data = serialize(metadata, path="metadata")
        respond_data = (
            None if respond_with is None else serialize(respond_with, path="respond_with")
        )
        correlation_id = self._ledger.ids.next("hook")
        call = HookCall(
            correlation_id,
            token if token is not None else self._default_token(correlation_id),
            metadata_data,
            is_webhook,
            respond_data,
            self._loop,
            token_given=token is not None,
            site=user_call_site(),
        )
        self._ledger.add_hook(call)
        return call

    def _default_token(self, correlation_id: str) -> str:
        """The token the log recorded for this hook, else a fresh random one."""
        if self._recorded_tokens is None:
            self._recorded_tokens = {
                event.correlation_id: token
                for event in self._feeding
                if event.event_type in ("hook_created", "hook_conflict")
                and event.correlation_id
                and isinstance(token := event.data.get("token"), str)
                and token
            }
        return self._recorded_tokens.get(correlation_id) or fresh_hook_token()

    def dispose_hook(self, call: HookCall) -> None:
        """Release a hook's token (a ``hook_disposed`` is reported once it was created)."""
        if call.disposed:
            return
        call.disposed = True
        self._ledger.uncreated_hooks.pop(call.correlation_id, None)
        self._ledger.live_hooks.pop(call.correlation_id, None)
        if call.created and not call.conflicted and not call.dispose_recorded:
            self._ledger.disposals[call.correlation_id] = call
        call.release_awaiters()

    async def sleep_until(self, resume_at: datetime, *, site: CallSite | None = None) -> None:
        """Wait on the workflow clock until ``resume_at`` (a durable wait).

        Args:
            resume_at: when to wake up.
            site: the user's line that asked for the wait (found from the stack when None).
        """
        self._check_open()
        future = self._loop.create_future()
        if resume_at <= self._clock:
            self._loop.call_soon(set_result_unless_cancelled, future, None)
            await future
            return
        handle = asyncio.TimerHandle(
            resume_at.timestamp(), set_result_unless_cancelled, (future, None), self._loop, None
        )
        self._register_wait(handle, resume_at, site or user_call_site())
        try:
            await future
        finally:
            handle.cancel()

    # --- TimerScheduler (the loop's durable timers) ------------------------------------

    def timer_scheduled(self, handle: asyncio.TimerHandle) -> None:
        """A ``call_at``/``call_later`` in the future: make it a durable wait."""
        self._check_open()
        delay = handle.when() - self._loop.time()
        self._register_wait(handle, self._clock + timedelta(seconds=delay), user_call_site())

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """A timer was cancelled: it stays subscribed, but is no longer created nor awaited."""
        wait = self._ledger.timers.get(id(handle))
        if wait is None or wait.fired or wait.cancelled:
            return
        wait.cancelled = True
        self._ledger.active_waits.pop(wait.correlation_id, None)
        self._ledger.uncreated_waits.pop(wait.correlation_id, None)

    # --- internals ----------------------------------------------------------------------

    def _metadata(self) -> WorkflowMetadata:
        return WorkflowMetadata(
            workflow_name=self._run.workflow_name,
            workflow_run_id=self._run.run_id,
            workflow_started_at=self._clock,
            url=self._url,
        )

    def _check_open(self) -> None:
        if self._closed or self._result is not None:
            raise WorkflowSuspension("the workflow's replay session is closed")

    def _start(self) -> None:
        """Start the workflow: the clock and the id stream begin at the run's start."""
        self._loop.set_time(self._clock.timestamp())
        clock, started = self._clock, self.metadata.workflow_started_at
        if clock != started or clock.tzinfo is not started.tzinfo or clock.fold != started.fold:
            # A run_started moved the clock (else both are as ``__init__`` made them).
            self._ledger.ids = CorrelationIds(self._run.run_id, self._clock)
            self.metadata = self._metadata()
        context = contextvars.copy_context()
        context.run(self._enter_workflow_context)
        self._main = self._loop.create_task(self._run_workflow(), context=context)
        self._loop.run_until_idle()

    def _enter_workflow_context(self) -> None:
        current_workflow.set(self)
        current_mode.set("workflow")
        current_step.set(None)

    async def _run_workflow(self) -> Any:
        result = self._fn(*self._args, **self._kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _settle(self) -> Outcome:
        outcome = self._settle_workflow()
        if not self._pending_patches:
            return outcome
        patches = tuple(self._pending_patches)
        if isinstance(outcome, Suspended):
            return dataclasses.replace(outcome, patches=patches)
        self._result = dataclasses.replace(outcome, patches=patches)
        return self._result

    def _settle_workflow(self) -> Outcome:
        main = self._main
        assert main is not None
        if main.done():
            if main.cancelled():
                return self._finish(Failed(asyncio.CancelledError(), "USER_ERROR"))
            error = main.exception()
            if error is not None:
                return self._finish(Failed(_without_our_frame(error), "USER_ERROR"))
            return self._finish(Completed(main.result()))
        self._ledger.drop_cancelled_uncreated_steps()
        if not self._ledger.can_progress():
            return self._finish(Failed(WorkflowDeadlockError(DEADLOCK_MESSAGE), "USER_ERROR"))
        return self._ledger.suspension()

    def _finish(self, outcome: Completed | Failed) -> Completed | Failed:
        self._result = outcome
        try:
            self.close()
        except Exception:  # teardown must not mask the outcome
            pass
        return outcome

    def _register_wait(
        self, handle: asyncio.TimerHandle, resume_at: datetime, site: CallSite | None
    ) -> None:
        wait = WaitCall(self._ledger.ids.next("wait"), resume_at, handle, self._clock, site)
        self._ledger.add_wait(wait)

    def _call_for(self, event: Event, kind: type[_CallT]) -> _CallT:
        call = self._ledger.calls.get(event.correlation_id or "")
        if isinstance(call, kind):
            return call  # the common case, without the ledger's diagnosis
        returned = self._main is not None and self._main.done()
        return self._ledger.call_for(event, kind, returned=returned)

    def _deliver(self, event: Event) -> None:
        """Deliver one event to its consumer (the dispatcher over event kinds)."""
        at = event.created_at  # the clock moves to the event's time, never backwards
        if at > self._clock:
            self._clock = at
            self._loop.set_time(at.timestamp())
        event_type = event.event_type
        match event_type:  # the most frequent kinds first: a case compares in order
            case (
                "step_created" | "step_started" | "step_retrying" | "step_completed" | "step_failed"
            ):
                deliver_step_event(
                    self._ledger, self._label, event_type, event, self._call_for(event, StepCall)
                )
            case (
                "run_created"
                | "run_started"
                | "run_completed"
                | "run_failed"
                | "run_cancelled"
                | "run_retried"
            ):
                self._deliver_run_event(event_type)
            case "hook_created" | "hook_conflict" | "hook_received" | "hook_disposed":
                deliver_hook_event(
                    self._ledger, self._label, event_type, event, self._call_for(event, HookCall)
                )
            case "wait_created" | "wait_completed":
                call = self._call_for(event, WaitCall)
                deliver_wait_event(self._ledger, self._label, self._loop, event_type, event, call)
            case "patch_marked":
                patch_id = event.data.get("patch_id")
                if isinstance(patch_id, str):
                    # Written for a True answer: later calls for this id agree.
                    self._patches[patch_id] = True
                    if patch_id in self._pending_patches:
                        self._pending_patches.remove(patch_id)
            case _:
                assert_never(event_type)

    def _deliver_run_event(self, event_type: RunEventType) -> None:
        match event_type:
            case "run_created" | "run_started":
                pass  # the run's lifecycle; the clock already moved
            case "run_completed" | "run_failed" | "run_cancelled":
                pass  # written after this replay's outcome; nothing to deliver
            case "run_retried":
                pass  # a failed attempt ended before it: replay goes on past both
            case _:
                assert_never(event_type)


def _without_our_frame(error: BaseException) -> BaseException:
    """Drop the session's own frame from the top of a user error's traceback."""
    tb = error.__traceback__
    if tb is not None and tb.tb_frame.f_code is ReplaySession._run_workflow.__code__:
        error.__traceback__ = tb.tb_next
    return error


def replay(
    workflow_fn: Callable[..., Any],
    run: Run,
    events: Sequence[Event],
    *,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    url: str = "",
) -> Outcome:
    """Replay a whole log in a fresh session (the full-replay path) and close it.

    Returns:
        The outcome a session fed ``events`` reports.
    """
    session = ReplaySession(workflow_fn, run, args=args, kwargs=kwargs, url=url)
    try:
        return session.feed(events)
    finally:
        session.close()
