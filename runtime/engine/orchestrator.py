"""Workflow message handling: catch a run's replay up with its log, write what it does next.

For each workflow message the orchestrator brings the run's ``ReplaySession`` up to
date with the log and turns its outcome into events: ``run_completed`` /
``run_failed``, or for a suspension hooks first (a ``hook_conflict`` is fed back
at once so the workflow sees ``HookConflictError``), then disposals, then steps
and waits in one transaction.

Linear cost. Suspended sessions stay alive in an LRU cache keyed by run id and
are fed only the events after the last one they saw; a miss (restart, eviction,
another worker moved the run on) replays the whole log in a fresh session. Every
write goes through ``create_batch(expected_last_event_id=…)`` so the events the
world returns are exactly the next events of the log and can be fed without
re-reading it; a refusal means someone else wrote in between, and the session
catches up from the log before trying again.

The hot path (DESIGN.md §5). Steps created by a suspension are written as
``[step_created, step_started]`` in the same transaction and run inline in this
worker (up to ``step_concurrency``; the rest become step messages). When inline
steps finish, their outcomes are fed to the session as *provisional* events
(``EventRequest.created_at`` fixes their time) and written together with
whatever the workflow does next -- the next step's created/started, or
``run_completed`` -- in ONE transaction: one commit per sequential step, and a
gather's completions that arrive together share a commit. If the world refuses
that transaction the session is discarded, the outcomes are written on their
own, and a full replay from the log takes over. Rejected alternative: two
transactions per step (write the completion, feed the returned event, write the
next creation) -- simpler, half the speed; kept as ``provisional=False``.

Siblings: ``wfkit.runtime.engine.run_state`` (one run's session, log position, open waits and
inline tasks: ``RunState``) and ``wfkit.runtime.engine.inline_steps`` (running steps in this
worker: ``InlineSteps``). This module decides what to write and writes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.engine.executor import retry_delay_seconds, step_message, workflow_message
from wfkit.runtime.engine.inline_steps import InlineSteps
from wfkit.runtime.engine.run_state import NoSession, RunState, correlation_id_of, placeholder_run
from wfkit.runtime.errors import SerializationError, WorkflowNotRegisteredError
from wfkit.runtime.loading import registry
from wfkit.runtime.replay.session import Completed, Failed, ReplaySession, Suspended
from wfkit.runtime.serialization import deserialize_call, serialize, serialize_error
from wfkit.worlds.base import (
    SPEC_VERSION,
    STEP_TERMINAL,
    EntityConflictError,
    Event,
    EventRequest,
    EventResult,
    QueueMessageRequest,
    RunNotFoundError,
    World,
    WorldError,
    new_id,
    normalize_json,
    utc_now,
)

__all__ = ["MAX_DELIVERIES", "Orchestrator", "wake_run"]

log = logging.getLogger("wfkit.orchestrator")

MAX_DELIVERIES = 48
"""A workflow message delivered more often than this fails its run (as the DevKit does)."""

_TOLERATED = (EntityConflictError, WorldError)


def wake_run(world: World, run_id: str, workflow_name: str, *, delay_seconds: float = 0.0) -> str:
    """Enqueue a workflow message for ``run_id`` so a worker replays it.

    Returns:
        The queue message id.
    """
    message = workflow_message(workflow_name, run_id, delay_seconds=delay_seconds)
    return world.queue.enqueue(message.queue, message.payload, delay_seconds=delay_seconds)


class _Refused(Exception):
    """The world refused a batch (someone else wrote first, or the run ended)."""


class Orchestrator:
    """Handles workflow messages for one worker; owns the cache of live replays.

    Args:
        world: where the runs live.
        replay_cache: keep suspended sessions between messages (False: every
            message replays the whole log; also ``WFKIT_REPLAY_CACHE=0``).
        cache_size: how many suspended runs to keep alive (LRU).
        inline_steps: run new steps in this worker right away.
        step_concurrency: most steps run inline at once in this worker (the
            rest of a suspension's steps become step messages).
        provisional: group-commit a step's outcome with the workflow's next
            events (one transaction per sequential step).
        lease_seconds: the worker's lease; an outstanding step that another
            worker started more recently than half of it is left alone.
        url: the deployment URL shown in workflow metadata.
        inline_wait_seconds: a wait due within this many seconds is waited for in
            the handler instead of through a delayed message.
        on_enqueue: called after this orchestrator enqueued work (wakes the worker loop).
    """

    def __init__(
        self,
        world: World,
        *,
        replay_cache: bool = True,
        cache_size: int = 1000,
        inline_steps: bool = True,
        step_concurrency: int = 1000,
        provisional: bool = True,
        lease_seconds: float = 30.0,
        url: str = "",
        inline_wait_seconds: float = 1.0,
        on_enqueue: Callable[[], None] | None = None,
        session_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.world = world
        self.replay_cache = replay_cache
        self.cache_size = max(0, cache_size)
        self.inline_steps = inline_steps
        self.step_concurrency = max(1, step_concurrency)
        self.provisional = provisional
        self.lease_seconds = lease_seconds
        self.url = url
        self.inline_wait_seconds = inline_wait_seconds
        self._on_enqueue = on_enqueue
        self._session_factory = session_factory or ReplaySession
        self._cache: OrderedDict[str, RunState] = OrderedDict()
        self._driving: dict[str, RunState] = {}
        self._inline = InlineSteps(
            world, step_concurrency=self.step_concurrency, url=url, on_enqueue=on_enqueue
        )

    # --- public ------------------------------------------------------------------

    @property
    def cached_runs(self) -> int:
        """How many suspended runs are kept alive."""
        return len(self._cache)

    def is_running_inline(self, run_id: str, correlation_id: str) -> bool:
        """Whether this worker is running that step inline right now (a step message
        for it is then a duplicate)."""
        state = self._driving.get(run_id)
        return state is not None and correlation_id in state.inline

    def is_driving(self, run_id: str) -> bool:
        """Whether a handler in this worker is working ``run_id`` right now."""
        return run_id in self._driving

    async def handle_workflow_message(self, run_id: str, *, delivery_attempt: int = 1) -> None:
        """Bring ``run_id`` forward as far as its log allows.

        If this worker is already working the run (inline steps running), the
        message only nudges that handler to read the new events, and returns.

        Raises:
            Whatever the world or the replay raise unexpectedly; the worker then
            redelivers the message later.
        """
        driving = self._driving.get(run_id)
        if driving is not None:
            driving.poked = True
            driving.signal.set()
            return
        state = self._cache.pop(run_id, None)
        placeholder = state is None
        if state is None:
            state = RunState(run=placeholder_run(run_id), session=NoSession())
        self._driving[run_id] = state
        state.signal = asyncio.Event()  # bound to this loop, whichever ran it before
        keep = False
        try:
            keep = await self._handle(state, fresh=placeholder, delivery_attempt=delivery_attempt)
        finally:
            # No await between the last look at ``poked`` (in _drive) and here: a
            # nudge either reached the loop or finds no driver and queues normally.
            del self._driving[run_id]
            if state.inline and not state.terminal:
                self._inline.hand_off(state)
            if keep and self.replay_cache and not state.terminal and self.cache_size:
                self._cache[run_id] = state
                while len(self._cache) > self.cache_size:
                    _, evicted = self._cache.popitem(last=False)
                    evicted.close()
            else:
                state.close()

    def close(self) -> None:
        """Close every cached session."""
        while self._cache:
            _, state = self._cache.popitem()
            state.close()

    # --- one message -----------------------------------------------------------------

    async def _handle(self, state: RunState, *, fresh: bool, delivery_attempt: int) -> bool:
        run_id = state.run.run_id
        if fresh:
            if not self._start_run(state, delivery_attempt):
                return False
            heal = True
        else:
            # A redelivered message (its worker died or stalled) or one that brings
            # nothing new (a sweep, a duplicate) may mean that another worker moved the
            # run on and died mid-step: heal its orphaned steps as a fresh replay does.
            caught_up = self._catch_up(state)
            heal = delivery_attempt > 1 or caught_up == 0
        if state.terminal:
            return False
        if heal:
            self._heal_outstanding(state)
        await self._drive(state)
        if not state.terminal:
            self._ensure_wake(state)
        log.debug("run %s handled; terminal=%s", run_id, state.terminal)
        return not state.terminal

    def _start_run(self, state: RunState, delivery_attempt: int) -> bool:
        """run_started (idempotent), then a full replay of the log in a new session."""
        run_id = state.run.run_id
        try:
            started = self.world.events.create(run_id, EventRequest(event_type="run_started"))
        except EntityConflictError:
            return False  # the run already ended
        except RunNotFoundError:
            log.warning("workflow message for unknown run %s dropped", run_id)
            return False
        run = started.run
        if run is None or run.status != "running":
            return False
        state.run = run
        if delivery_attempt > MAX_DELIVERIES:
            self._fail_quietly(
                state,
                RuntimeError(
                    f"Workflow exceeded maximum queue deliveries ({delivery_attempt}/{MAX_DELIVERIES})"
                ),
                "MAX_DELIVERIES_EXCEEDED",
            )
            return False
        try:
            workflow_fn = registry.get_workflow(run.workflow_name)
            token = current_mode.set("workflow")
            try:
                args, kwargs, _closure, _this = deserialize_call(run.input or {})
            finally:
                current_mode.reset(token)
        except (WorkflowNotRegisteredError, SerializationError) as exc:
            self._fail_quietly(state, exc, "RUNTIME_ERROR")
            return False
        state.session = self._session_factory(
            workflow_fn, run, args=tuple(args), kwargs=dict(kwargs), url=self.url
        )
        state.feed(self.world.events.list(run_id))
        return not state.terminal

    def _fail_quietly(self, state: RunState, exc: BaseException, code: str) -> None:
        state.terminal = True
        request = EventRequest(
            event_type="run_failed",
            data={"error": serialize_error(exc), "error_code": code},
        )
        try:
            self.world.events.create_batch(state.run.run_id, [request])
        except EntityConflictError:
            pass

    # --- feeding ----------------------------------------------------------------------

    def _catch_up(self, state: RunState) -> int:
        """Feed the events written since the session last saw the log; how many."""
        events = self.world.events.list(state.run.run_id, after_event_id=state.synced_id)
        state.feed(events)
        return len(events)

    def _rebuild(self, state: RunState) -> None:
        """Discard the session and replay the whole log in a new one."""
        state.session.close()
        state.open_waits.clear()
        state.synced_id = None
        inline, names = state.inline, state.step_names
        if not self._start_run(state, 1):
            state.terminal = True
        state.inline, state.step_names = inline, names

    def _append(
        self,
        state: RunState,
        requests: Sequence[EventRequest],
        messages: Sequence[QueueMessageRequest] = (),
    ) -> list[EventResult]:
        """Append ``requests`` right after the last event the session saw."""
        try:
            results = self.world.events.create_batch(
                state.run.run_id,
                list(requests),
                messages=list(messages),
                expected_last_event_id=state.synced_id,
            )
        except EntityConflictError as exc:
            raise _Refused(str(exc)) from exc
        if results:
            state.synced_id = results[-1].event.event_id
        if messages and self._on_enqueue is not None:
            self._on_enqueue()
        return results

    def _recover(self, state: RunState, unwritten: list[EventRequest], provisional: bool) -> None:
        """After a refused batch: record our outcomes on their own, then catch up from the log."""
        for request in unwritten:
            try:
                self.world.events.create_batch(
                    state.run.run_id, [request], messages=self._messages_for(state, [request])
                )
            except _TOLERATED:
                pass  # the first terminal event wins; or the run ended
        if provisional:
            self._rebuild(state)
        elif self._catch_up(state) == 0:
            # Refused with nothing new in the log: the session is out of step.
            self._rebuild(state)

    # --- the loop ---------------------------------------------------------------------

    async def _drive(self, state: RunState) -> None:
        unwritten: list[EventRequest] = []
        fed = False
        refusals = 0
        while not state.terminal:
            try:
                if unwritten and not fed:
                    if self.provisional:
                        unwritten = self._feed_provisional(state, unwritten)
                        fed = True
                        continue
                    results = self._append(state, unwritten, self._messages_for(state, unwritten))
                    unwritten = []
                    state.feed([r.event for r in results])
                    continue
                outcome = state.outcome
                if isinstance(outcome, Completed | Failed):
                    self._append(state, [*unwritten, self._ending(outcome)])
                    state.terminal = True
                    break
                if not isinstance(outcome, Suspended):
                    raise RuntimeError(f"unexpected replay outcome {outcome!r}")
                if outcome.hooks or outcome.disposals:
                    requests = [*unwritten, *self._hook_requests(outcome)]
                    results = self._append(state, requests, self._messages_for(state, unwritten))
                    state.feed([r.event for r in results[len(unwritten) :]])
                    unwritten, fed = [], False
                    continue
                if outcome.steps or outcome.waits or unwritten:
                    self._create_work(state, outcome, unwritten)
                    unwritten, fed = [], False
                    refusals = 0
                    continue
            except _Refused:
                refusals += 1
                if refusals > 20:
                    raise RuntimeError(
                        f"run {state.run.run_id}: the world keeps refusing writes"
                    ) from None
                self._recover(state, unwritten, fed)
                unwritten, fed = [], False
                continue
            # Idle: everything the workflow asked for is in the log.
            due = state.due_waits()
            if due:
                unwritten = due
                continue
            if state.poked:
                state.poked = False
                self._catch_up(state)
                continue
            if not state.inline and not state.wait_is_near(self.inline_wait_seconds):
                break
            await state.wait_for_news()
            unwritten = self._inline.collect_finished(state)
        if state.terminal:
            state.cancel_inline()

    def _feed_provisional(
        self, state: RunState, requests: list[EventRequest]
    ) -> list[EventRequest]:
        """Show ``requests`` to the session before they are written; returns them
        stamped with the time the session saw, which the world then stores."""
        now = utc_now()
        run_id = state.run.run_id
        # model_construct: these are built from already-valid requests, and this is
        # the per-step hot path (validation would cost more than the replay step).
        stamped = [
            EventRequest.model_construct(
                event_type=r.event_type,
                correlation_id=r.correlation_id,
                data=r.data,
                created_at=now,
            )
            for r in requests
        ]
        events = [
            Event.model_construct(
                event_id=new_id("evnt"),
                run_id=run_id,
                event_type=r.event_type,
                correlation_id=r.correlation_id,
                data=normalize_json(r.data),
                created_at=now,
                spec_version=SPEC_VERSION,
            )
            for r in stamped
        ]
        state.feed(events, real=False)
        return stamped

    def _ending(self, outcome: Any) -> EventRequest:
        if isinstance(outcome, Completed):
            try:
                return EventRequest(
                    event_type="run_completed", data={"output": serialize(outcome.value)}
                )
            except SerializationError as exc:
                return EventRequest(
                    event_type="run_failed",
                    data={"error": serialize_error(exc), "error_code": "USER_ERROR"},
                )
        return EventRequest(
            event_type="run_failed",
            data={"error": serialize_error(outcome.error), "error_code": outcome.code},
        )

    def _hook_requests(self, outcome: Any) -> list[EventRequest]:
        requests = [
            EventRequest(
                event_type="hook_created",
                correlation_id=hook.correlation_id,
                data={
                    "token": hook.token,
                    "metadata": hook.metadata,
                    "is_webhook": bool(hook.is_webhook),
                    "respond_with": hook.respond_with,
                },
            )
            for hook in outcome.hooks
        ]
        if not requests:
            requests = [
                EventRequest(event_type="hook_disposed", correlation_id=correlation_id_of(item))
                for item in outcome.disposals
            ]
        return requests

    def _create_work(self, state: RunState, outcome: Any, unwritten: list[EventRequest]) -> None:
        """One transaction: outcomes not yet written, new steps (inline ones started), waits."""
        run_id = state.run.run_id
        requests = list(unwritten)
        messages = self._messages_for(state, unwritten)
        budget = self._inline.free_slots() if self.inline_steps else 0
        inline_ids: set[str] = set()
        starts: list[EventRequest] = []
        for step in outcome.steps:
            cid = step.correlation_id
            requests.append(
                EventRequest(
                    event_type="step_created",
                    correlation_id=cid,
                    data={"step_name": step.step_id, "input": step.input},
                )
            )
            state.step_names[cid] = step.step_id
            if budget > 0:
                budget -= 1
                inline_ids.add(cid)
                starts.append(EventRequest(event_type="step_started", correlation_id=cid))
            else:
                messages.append(step_message(run_id, cid, step.step_id))
        # All step_created first: one suspension's steps are adjacent in the log.
        requests.extend(starts)
        for wait in outcome.waits:
            requests.append(
                EventRequest(
                    event_type="wait_created",
                    correlation_id=wait.correlation_id,
                    data={"resume_at": wait.resume_at.isoformat()},
                )
            )
        if outcome.waits:
            messages.append(state.wake_message([w.resume_at for w in outcome.waits]))
        results = self._append(state, requests, messages)
        for result in results[len(unwritten) :]:
            step = result.step
            if result.event.event_type == "step_started" and step is not None:
                if step.step_id in inline_ids:
                    self._inline.start(state, step)
        state.feed([r.event for r in results[len(unwritten) :]])

    def _messages_for(
        self, state: RunState, requests: Sequence[EventRequest]
    ) -> list[QueueMessageRequest]:
        """Delayed step messages for the retries among ``requests``."""
        messages = []
        for request in requests:
            if request.event_type == "step_retrying" and request.correlation_id:
                name = state.step_names.get(request.correlation_id)
                if name is None:
                    try:
                        name = self.world.steps.get(
                            state.run.run_id, request.correlation_id
                        ).step_name
                    except WorldError:
                        continue
                messages.append(
                    step_message(
                        state.run.run_id,
                        request.correlation_id,
                        name,
                        delay_seconds=retry_delay_seconds(request),
                    )
                )
        return messages

    # --- wake-ups and healing -----------------------------------------------------------

    def _ensure_wake(self, state: RunState) -> None:
        """A suspended run with open waits has a delayed message for the earliest."""
        if not state.open_waits:
            return
        message = state.wake_message([])
        try:
            self.world.queue.enqueue(
                message.queue,
                message.payload,
                delay_seconds=message.delay_seconds,
                idempotency_key=message.idempotency_key,
            )
        except WorldError as exc:  # the sweep re-enqueues the run
            log.warning("could not enqueue the wake-up of %s: %s", state.run.run_id, exc)

    def _heal_outstanding(self, state: RunState) -> None:
        """Re-enqueue steps created but not finished that no one seems to run.

        After a crash nothing else would run them; the idempotency key (the
        correlation id) makes this a no-op while their message is still queued.
        """
        outcome = state.outcome
        if not isinstance(outcome, Suspended):
            return
        now = utc_now()
        enqueued = False
        for item in outcome.outstanding_steps:
            cid = correlation_id_of(item)
            if cid in state.inline:
                continue
            name = item[1] if isinstance(item, tuple) else getattr(item, "step_id", None)
            try:
                record = self.world.steps.get(state.run.run_id, cid)
            except WorldError:
                continue
            if record.status in STEP_TERMINAL:
                continue
            recently = (now - record.updated_at).total_seconds() < self.lease_seconds / 2
            if record.status == "running" and recently:
                continue  # probably running inline in another worker
            message = step_message(state.run.run_id, cid, name or record.step_name)
            self.world.queue.enqueue(
                message.queue, message.payload, idempotency_key=message.idempotency_key
            )
            enqueued = True
        if enqueued and self._on_enqueue is not None:
            self._on_enqueue()
