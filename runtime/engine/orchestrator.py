"""Workflow messages: bring a run's replay up to date with its log, write what it does next.

The engine's flow. The worker (``worker``) leases queue messages (``messages``): a
step message runs one step attempt (``executor``); a workflow message comes to
``Orchestrator.handle_workflow_message``, which

1. **finds the run's live replay**: a ``RunState`` (``run_state``: session, log
   position, open waits, inline steps) kept alive in this worker's LRU cache
   *catches up with the log*, fed only the events written since it last looked;
   on a miss (first message, restart, eviction) a fresh ``ReplaySession``
   *replays the whole log*; a run not started yet is started *provisionally*: the
   session is shown a ``run_started`` stamped with its time (the run record it
   replays with says so too, so the correlation ids match a later full replay),
   and the run's first write carries it, right after ``run_created`` -- one
   transaction fewer per run. What writing it first decided is read from the run's
   record instead (a fold of ``run_created`` alone on a first message): an ended or
   unknown run is dropped, a run waiting in its named queue is left to admission;
   a refused first write replays afresh; a run past
   its deadline is failed instead, here or at any turn of step 3
   (``wfkit.runtime.flow.deadlines``);
2. **requeues orphaned steps** after a full replay, a redelivery or a message
   that brought nothing new: steps created but unfinished that no worker seems to
   run (their worker died mid-step);
3. **drives the run** (``_drive``) until it ends or only others can move it on,
   one thing per turn:

   - *feed new outcomes* (finished inline steps, due waits) to the session;
   - *commit what its outcome asks for* (``outcome_requests`` builds the events):
     ``Completed``/``Failed`` -> ``run_completed``/``run_failed``; ``Suspended``
     with hooks -> ``hook_created`` (a ``hook_conflict`` the world writes instead
     is fed back at once, so the workflow sees ``HookConflictError``), then
     disposals; with steps or waits -> ONE transaction of the outcomes not yet
     written, every ``step_created``, ``step_started`` for the steps run inline,
     every ``wait_created``, and step messages for the rest; then the *inline
     steps start* (``inline_steps``: an asyncio task each), and the outcomes of
     those that ended as they started are fed with the new events (one feed per
     sequential step);
   - *find more work*: complete due waits, catch up if a message nudged the run
     meanwhile, sleep until an inline step finishes or a near wait is due -- or
     stop, when only other workers or the clock can move the run on;
4. **keeps the state** cached while the run is suspended, makes sure a delayed
   wake-up message exists for its earliest open wait, and hands inline steps it
   leaves unfinished to the queue.

Every write is a ``BatchWrite(expected_last_event_id=…)``, so the events the world
returns are exactly the next events of the log and are fed without re-reading it
(linear cost: one feed per event over a run's life). A refusal means someone else
wrote in between: the handler records its outcomes on their own and the session
catches up from the log (or replays it afresh) before trying again.

Group commit across runs (``group_commit``). The writes go through one
``GroupCommitter``: while the runs this worker drives are many, it commits them
from a writer thread, and the writes that become ready while a group commits share
the next transaction (``Events.create_batches``); each handler awaits its own
write's outcome, so a step is durable before its run moves on. A run driven alone
writes on the loop, as one ``create_batch``.

The hot path (DESIGN.md §5). Finished inline steps' outcomes are fed to the
session as *provisional* events (``EventRequest.created_at`` fixes their time)
and written with whatever the workflow does next -- the next step's
created/started, or ``run_completed`` -- in ONE transaction: one commit per
sequential step, and a gather's completions that arrive together share a
commit. If the world refuses it, the session is discarded, the outcomes are
written on their own and a full replay takes over. Rejected alternative: two
transactions per step (write the completion, feed the returned event, write the
next creation) -- simpler, half the speed; kept as ``provisional=False``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from wfkit.runtime.context import current_mode
from wfkit.runtime.engine.executor import retry_delay_seconds
from wfkit.runtime.engine.group_commit import (
    DEFAULT_MAX_GROUP,
    IN_PROCESS_WORLDS,
    GroupCommitter,
)
from wfkit.runtime.engine.inline_steps import InlineSteps
from wfkit.runtime.engine.messages import step_message
from wfkit.runtime.engine.outcome_requests import (
    hook_requests,
    patch_requests,
    provisional_events,
    run_ending_request,
    step_created_request,
    wait_created_request,
)
from wfkit.runtime.engine.run_state import RunState, placeholder_run
from wfkit.runtime.errors import (
    CorruptedEventLogError,
    SerializationError,
    WorkflowNotRegisteredError,
)
from wfkit.runtime.flow.deadlines import (
    RUN_DEADLINE_EXCEEDED,
    deadline_error,
    deadline_passed,
    ensure_deadline_backup,
    fail_queued_run_past_deadline,
)
from wfkit.runtime.loading import registry
from wfkit.runtime.observability import metrics, reports, tracing
from wfkit.runtime.observability.logs import log_fields
from wfkit.runtime.replay.outcome import Completed, Failed, Suspended
from wfkit.runtime.replay.session import ReplaySession
from wfkit.runtime.serialization import deserialize_call, serialize_error
from wfkit.runtime.serialization.at_rest import seal_error
from wfkit.worlds.base import (
    STEP_TERMINAL,
    BatchWrite,
    CorruptedLogError,
    EntityConflictError,
    Event,
    EventRequest,
    EventResult,
    QueueMessageRequest,
    Run,
    RunNotFoundError,
    World,
    WorldError,
    fold_events,
    utc_now,
)

__all__ = ["MAX_DELIVERIES", "MovedIfPinned", "Orchestrator"]

log = logging.getLogger("wfkit.orchestrator")

MAX_DELIVERIES = 48
"""A workflow message delivered more often than this fails its run (as the DevKit does)."""

_MAX_REFUSALS = 20
"""Refused writes a handler tolerates between two successful creations of work;
one more and it gives up (the worker redelivers the message later)."""

_TOLERATED = (EntityConflictError, WorldError)

MovedIfPinned = Callable[[Run | None], bool]
"""``handle_workflow_message``'s ``moved_if_pinned``."""


def _known_record(state: RunState) -> Run | None:
    """The run's record when ``state`` has read it (a handler still in its first turn
    holds a placeholder): what ``moved_if_pinned`` is given."""
    return state.run if state.session is not None else None


class _Refused(Exception):
    """The world refused a batch (someone else wrote first, or the run ended)."""


@dataclass
class _Unwritten:
    """Outcomes a handler holds that are not in the log yet: finished inline steps'
    results, due waits' completions."""

    requests: list[EventRequest] = field(default_factory=list)
    fed_provisionally: bool = False
    """The session was already shown them as provisional events; they only need writing."""


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
        feed_deadline: seconds a workflow may run without yielding to its replay loop
            before the run fails (``wfkit.runtime.replay.watchdog``); None: unbounded.
        on_enqueue: called after this orchestrator enqueued work (wakes the worker loop).
        max_group: most runs' writes committed in one transaction (``group_commit``).
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
        feed_deadline: float | None = None,
        on_enqueue: Callable[[], None] | None = None,
        max_group: int = DEFAULT_MAX_GROUP,
    ) -> None:
        self.world = world
        self.replay_cache = replay_cache
        self.cache_size = max(0, cache_size)
        self.inline_steps = inline_steps
        self.provisional = provisional
        self.lease_seconds = lease_seconds
        self.url = url
        self.inline_wait_seconds = inline_wait_seconds
        self.feed_deadline = feed_deadline
        self._on_enqueue = on_enqueue
        self._cache: OrderedDict[str, RunState] = OrderedDict()
        self._driving: dict[str, RunState] = {}
        self._inline_claimed = 0
        self._committer = GroupCommitter(
            world.events,
            crowded=lambda: len(self._driving) > 1,
            max_group=max_group,
            in_loop=getattr(world, "name", "") in IN_PROCESS_WORLDS,
        )
        self._inline = InlineSteps(
            world,
            step_concurrency=max(1, step_concurrency),
            lease_seconds=lease_seconds,
            url=url,
            on_enqueue=on_enqueue,
        )

    # --- public ------------------------------------------------------------------

    @property
    def cached_runs(self) -> int:
        """How many suspended runs are kept alive."""
        return len(self._cache)

    @property
    def inline_steps_running(self) -> int:
        """How many steps this orchestrator runs inline now (across its runs)."""
        return self._inline.running

    def is_running_inline(self, run_id: str, correlation_id: str) -> bool:
        """Whether this worker is running that step inline right now (a step message
        for it is then a duplicate)."""
        state = self._driving.get(run_id)
        return state is not None and correlation_id in state.inline_tasks

    async def handle_workflow_message(
        self,
        run_id: str,
        *,
        delivery_attempt: int = 1,
        moved_if_pinned: MovedIfPinned | None = None,
    ) -> None:
        """Bring ``run_id`` forward as far as its log allows.

        If this worker is already working the run (inline steps running), the
        message only nudges that handler to read the new events, and returns.

        Args:
            run_id: the run the message names.
            delivery_attempt: how often the message was delivered (a redelivery
                may mean its last worker died mid-step; past ``MAX_DELIVERIES``
                the run fails).
            moved_if_pinned: for a message found on an unpinned queue (``serving``):
                moves it to its run's own queue when the run is pinned, given the
                run's record (None: it reads it), and answers whether it did; then
                nothing else is done. Asked as soon as the record is known (a cold
                handler reads it anyway: no read of its own), before anything is
                replayed or written.

        Raises:
            Whatever the world or the replay raise unexpectedly; the worker then
            redelivers the message later.
        """
        driving = self._driving.get(run_id)
        if driving is not None:
            if moved_if_pinned is not None and moved_if_pinned(_known_record(driving)):
                return
            driving.log_may_have_news = True
            driving.news.set()
            return
        cached = self._cache.get(run_id)
        if cached is not None and moved_if_pinned is not None and moved_if_pinned(cached.run):
            return
        state = self._cache.pop(run_id, None)
        needs_full_replay = state is None
        if state is None:
            state = RunState(run=placeholder_run(run_id))
        self._driving[run_id] = state
        state.news = asyncio.Event()  # bound to this loop, whichever ran it before
        keep = False
        try:
            with tracing.handling_message(run_id, delivery_attempt):
                keep = await self._handle(
                    state,
                    needs_full_replay=needs_full_replay,
                    delivery_attempt=delivery_attempt,
                    moved_if_pinned=moved_if_pinned,
                )
        except CorruptedLogError as exc:
            # Redelivering would read the same bytes again, for ever: the run fails once
            # and the message is acked.
            self._fail_run(state, CorruptedEventLogError(str(exc)), "CORRUPTED_EVENT_LOG")
        finally:
            # No await between the last look at ``log_may_have_news`` (in _drive) and
            # here: a nudge either reached the loop or finds no driver and queues normally.
            del self._driving[run_id]
            if state.inline_tasks and not state.terminal:
                self._inline.hand_off(state)
            if keep and self.replay_cache and not state.terminal and self.cache_size:
                self._cache[run_id] = state
                while len(self._cache) > self.cache_size:
                    _, evicted = self._cache.popitem(last=False)
                    evicted.close()
            else:
                state.close()

    def close(self) -> None:
        """Close every cached session and stop the writer thread."""
        while self._cache:
            _, state = self._cache.popitem()
            state.close()
        self._committer.close()

    # --- one message -----------------------------------------------------------------

    async def _handle(
        self,
        state: RunState,
        *,
        needs_full_replay: bool,
        delivery_attempt: int,
        moved_if_pinned: MovedIfPinned | None,
    ) -> bool:
        """Steps 1-3 of the module docstring; whether the run is suspended (worth caching)."""
        # The messages received with this one get here first: their runs' writes share
        # commits (``group_commit``) from the first one on. Without this turn the first
        # handler could write alone all the way through a run whose steps end as they
        # start (``inline_steps``), then the next one, and so on: no group at all.
        await asyncio.sleep(0)
        if needs_full_replay:
            if not await self._replay_whole_log(state, delivery_attempt, moved_if_pinned):
                return False
            requeue_orphans = True
        else:
            if self._deadline_passed(state):
                return False
            tracing.run_known(state.run, replay="cached")
            # A redelivered message (its worker died or stalled) or one that brings
            # nothing new (a sweep, a duplicate) may mean that another worker moved the
            # run on and died mid-step: requeue its orphaned steps as a fresh replay does.
            caught_up = await self._catch_up(state)
            requeue_orphans = delivery_attempt > 1 or caught_up == 0
        if state.terminal:
            return False
        if requeue_orphans:
            self._requeue_orphaned_steps(state)
        await self._drive(state)
        if state.starting is not None and not state.terminal:
            # The workflow asked for nothing to be written (it cannot have, as it
            # starts: its first suspension writes something): start the run alone.
            try:
                await self._append(state, [])
            except _Refused:
                return False  # the next message replays the log as it is
        if not state.terminal:
            self._ensure_wake_up_message(state)
            ensure_deadline_backup(self.world, state.run)
        log.debug("run %s handled; terminal=%s", state.run.run_id, state.terminal)
        return not state.terminal

    async def _replay_whole_log(
        self,
        state: RunState,
        delivery_attempt: int,
        moved_if_pinned: MovedIfPinned | None = None,
    ) -> bool:
        """Replay the whole log in a new session; a run not started yet starts
        provisionally: the session is shown ``run_started`` before it is written, and
        the run's first write carries it (``RunState.starting``).

        Returns:
            Whether the run is live and suspended; False when it ended, is unknown,
            waits in its named queue, was failed here (too many deliveries,
            workflow or input unloadable), or its message was moved
            (``moved_if_pinned``).
        """
        run_id = state.run.run_id
        state.starting = None
        events = self.world.events.list(run_id)
        run = self._run_record(run_id, events)
        if run is None:
            log.warning(
                "workflow message for unknown run %s dropped", run_id, extra=log_fields(run_id)
            )
            return False
        if moved_if_pinned is not None and moved_if_pinned(run):
            return False
        if run.status == "pending":
            if run.queue_name is not None:
                # It waits in its named queue (admission starts it), unless its
                # deadline passed there.
                fail_queued_run_past_deadline(self.world, run_id)
                return False
            if any(e.event_type == "run_started" for e in events):
                # The record was read before the log moved on: try again later.
                raise RuntimeError(f"run {run_id}: its record and its log disagree")
            # What writing run_started would do (the world checks it again when the
            # first write carries it, right after this log's last event).
            (starting,), started = provisional_events(
                run_id, [EventRequest(event_type="run_started")]
            )
            at = started[0].created_at
            run = run.model_copy(update={"status": "running", "started_at": at, "updated_at": at})
            state.starting = starting
            events = [*events, *started]
        elif run.status != "running":
            return False
        state.run = run
        if self._deadline_passed(state):
            return False
        tracing.run_known(run, replay="full")
        if delivery_attempt > MAX_DELIVERIES:
            self._fail_run(
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
            self._fail_run(state, exc, "RUNTIME_ERROR")
            return False
        with metrics.timing_replay(run.workflow_name, "full"):
            state.session = ReplaySession(
                workflow_fn,
                run,
                args=tuple(args),
                kwargs=dict(kwargs),
                url=self.url,
                feed_deadline=self.feed_deadline,
            )
            if state.starting is None:
                state.feed(events)
            else:
                # One feed (the workflow starts after run_started), provisional: the
                # next write still goes right after the last logged event.
                state.feed(events, provisional=True)
                state.synced_id = events[-2].event_id
        return not state.terminal

    def _run_record(self, run_id: str, events: Sequence[Event]) -> Run | None:
        """The run's record as of ``events`` (its whole log, just read); None when
        it has no log (an unknown run).

        A log of ``run_created`` alone (a run's first message) is folded: the world's
        record is that fold, and this spares a read. Any other log's record is read
        (a fold would cost a pass over the whole log)."""
        if not events:
            return None
        if len(events) == 1 and events[0].event_type == "run_created":
            folded = fold_events(events).runs.get(run_id)
            if folded is not None:
                return folded
        try:
            return self.world.runs.get(run_id)
        except RunNotFoundError:
            return None

    def _deadline_passed(self, state: RunState) -> bool:
        """Fail the run (``RUN_DEADLINE_EXCEEDED``) if its deadline has passed; whether
        it did. The world then releases its hooks and waits, and the inline steps
        still running here are cancelled (``_drive``)."""
        if not deadline_passed(state.run):
            return False
        self._fail_run(state, deadline_error(state.run), RUN_DEADLINE_EXCEEDED)
        return True

    def _fail_run(self, state: RunState, exc: BaseException, code: str) -> None:
        """Write ``run_failed`` without replaying (a run ended meanwhile is left as it is)."""
        state.terminal = True
        request = EventRequest(
            event_type="run_failed",
            data={"error": seal_error(serialize_error(exc)), "error_code": code},
        )
        # A run started provisionally here is started by this very write.
        starting = [state.starting] if state.starting is not None else []
        state.starting = None
        try:
            self.world.events.create_batch(state.run.run_id, [*starting, request])
        except EntityConflictError:
            return
        reports.run_ended(state.run, request, exc)

    # --- the log ----------------------------------------------------------------------

    async def _catch_up(self, state: RunState) -> int:
        """Feed the events written since the session last saw the log; how many.

        A session holding patch answers whose markers were never written (its write
        was refused) must not see other events after them: it is replaced by a
        full replay, which answers from the log as it is.
        """
        events = self.world.events.list(state.run.run_id, after_event_id=state.synced_id)
        session = state.session
        if events and session is not None and session.holds_unwritten_tokens:
            # Another worker created this hook first, with a token of its own: a full
            # replay reads that one before the workflow sees a token.
            await self._replay_from_scratch(state)
            return len(events)
        if session is not None and session.pending_patches:
            await self._replay_from_scratch(state)
            return len(events)
        if events and state.starting is not None:
            # The session saw a run_started that was never written: the log moved on
            # without it.
            await self._replay_from_scratch(state)
            return len(events)
        if events:
            with metrics.timing_replay(state.run.workflow_name, "catch_up"):
                state.feed(events)
        return len(events)

    async def _replay_from_scratch(self, state: RunState) -> None:
        """Discard the session and replay the whole log in a new one (inline steps
        keep running: their outcomes are written when they finish)."""
        if state.session is not None:
            state.session.close()
            state.session = None
        state.open_waits.clear()
        state.synced_id = None
        if not await self._replay_whole_log(state, 1):
            state.terminal = True

    async def _append(
        self,
        state: RunState,
        requests: Sequence[EventRequest],
        messages: Sequence[QueueMessageRequest] = (),
    ) -> list[EventResult]:
        """Append ``requests`` (and enqueue ``messages``) in one transaction, right
        after the last event the session saw; other runs' writes ready at the same
        time may share it (``group_commit``).

        A run started provisionally (``RunState.starting``) is started by this write:
        its ``run_started`` goes first, and its result is left out of those returned.

        Raises:
            _Refused: someone else wrote first, or a transition is not allowed.
        """
        starting = state.starting
        write = BatchWrite(
            state.run.run_id,
            [starting, *requests] if starting is not None else list(requests),
            messages=list(messages),
            expected_last_event_id=state.synced_id,
        )
        try:
            results = await self._committer.write(write)
        except EntityConflictError as exc:
            raise _Refused(str(exc)) from exc
        if results:
            state.synced_id = results[-1].event.event_id
        if starting is not None:
            state.starting = None
            results = results[1:]
        if messages and self._on_enqueue is not None:
            self._on_enqueue()
        return results

    async def _recover(self, state: RunState, unwritten: _Unwritten) -> None:
        """After a refused batch: record our outcomes on their own, then catch up from the log."""
        for request in unwritten.requests:
            try:
                self.world.events.create_batch(
                    state.run.run_id, [request], messages=self._retry_messages(state, [request])
                )
            except _TOLERATED:
                pass  # the first terminal event wins; or the run ended
        if (
            unwritten.fed_provisionally
            or state.starting is not None
            or (state.session is not None and state.session.pending_patches)
        ):
            # The session saw events that are not in the log as it saw them (step
            # outcomes, its run_started), or answered patched() True on the strength
            # of a marker never written.
            await self._replay_from_scratch(state)
        elif await self._catch_up(state) == 0:
            # Refused with nothing new in the log: the session is out of step.
            await self._replay_from_scratch(state)

    # --- driving ----------------------------------------------------------------------

    async def _drive(self, state: RunState) -> None:
        """Work the run until it ends or can only wait for others (step 3 of the
        module docstring).

        Each turn does one thing: feed outcomes not yet shown to the session
        (``_feed_new_outcomes``); commit what the session's outcome asks for
        (``_end_run``, ``_write_hooks``, ``_create_work``); or, with nothing left to
        write, find more work (``_find_more_work``). A refused write is recovered
        (``_recover``) and the next turn starts from the log.

        Raises:
            RuntimeError: the world refused more than ``_MAX_REFUSALS`` writes since
                work was last created, or the session has reported nothing yet.
        """
        unwritten = _Unwritten()
        refusals = 0
        while not state.terminal:
            if self._deadline_passed(state):
                break
            try:
                if unwritten.requests and not unwritten.fed_provisionally:
                    unwritten = await self._feed_new_outcomes(state, unwritten.requests)
                    continue
                match state.outcome:
                    case Completed() | Failed() as ending:
                        await self._end_run(state, ending, unwritten.requests)
                        continue
                    case Suspended() as suspended if suspended.hooks or suspended.disposals:
                        await self._write_hooks(state, suspended, unwritten.requests)
                        unwritten = _Unwritten()
                        continue
                    case Suspended() as suspended if (
                        suspended.steps
                        or suspended.waits
                        or suspended.patches
                        or unwritten.requests
                    ):
                        unwritten = await self._create_work(state, suspended, unwritten.requests)
                        refusals = 0
                        continue
                    case Suspended():
                        pass  # everything the workflow asked for is in the log
                    case None:
                        raise RuntimeError(f"run {state.run.run_id}: no replay outcome yet")
                    case unexpected:
                        assert_never(unexpected)
            except _Refused:
                refusals += 1
                if refusals > _MAX_REFUSALS:
                    raise RuntimeError(
                        f"run {state.run.run_id}: the world keeps refusing writes"
                    ) from None
                await self._recover(state, unwritten)
                unwritten = _Unwritten()
                continue
            more = await self._find_more_work(state)
            if more is None:
                break
            unwritten = _Unwritten(more)
        if state.terminal:
            state.cancel_inline()

    async def _feed_new_outcomes(self, state: RunState, requests: list[EventRequest]) -> _Unwritten:
        """Show the session outcomes it has not seen: provisionally, to be written with
        whatever the workflow does next; or (``provisional=False``) write them first
        and feed what the world returns.

        Returns:
            What is left to write (the stamped requests, or nothing).
        """
        if self.provisional:
            return self._feed_provisionally(state, requests)
        results = await self._append(state, requests, self._retry_messages(state, requests))
        state.feed([r.event for r in results])
        return _Unwritten()

    def _feed_provisionally(
        self, state: RunState, requests: list[EventRequest], *, after: Sequence[Event] = ()
    ) -> _Unwritten:
        """Feed the logged events ``after`` (just written), then ``requests`` as
        provisional events, in one feed; what is left to write (the stamped requests)."""
        stamped, events = provisional_events(state.run.run_id, requests)
        state.feed(after, provisional_after=events)
        return _Unwritten(stamped, fed_provisionally=True)

    async def _end_run(
        self, state: RunState, ending: Completed | Failed, unwritten: list[EventRequest]
    ) -> None:
        """Write the outcomes not yet written and ``run_completed``/``run_failed`` together."""
        # The patches' markers too: a replay of the finished log (a replay check, a
        # retry) must take the branches this run took.
        request = run_ending_request(ending)
        await self._append(state, [*unwritten, *patch_requests(ending.patches), request])
        state.terminal = True
        reports.run_ended(state.run, request, ending.error if isinstance(ending, Failed) else None)

    async def _write_hooks(
        self, state: RunState, suspended: Suspended, unwritten: list[EventRequest]
    ) -> None:
        """Write the outcomes not yet written and the hooks' events (creations first,
        disposals once none is pending), and feed the hooks' events back."""
        requests = [*unwritten, *patch_requests(suspended.patches), *hook_requests(suspended)]
        results = await self._append(state, requests, self._retry_messages(state, unwritten))
        # The outcomes were fed provisionally already: feed only what follows them.
        state.feed([r.event for r in results[len(unwritten) :]])

    async def _create_work(
        self, state: RunState, suspended: Suspended, unwritten: list[EventRequest]
    ) -> _Unwritten:
        """One transaction: outcomes not yet written, new steps (inline ones started), waits.

        Then the inline steps start, and the new events are fed to the session. The
        outcomes of inline steps that ended as they started are fed with them, as
        provisional events, when the next turns would do only that
        (``RunState.takes_finished_at_once``): per sequential step, one feed and one
        turn of ``_drive`` instead of two feeds and three turns. The session is shown
        the same events in the same order either way (a full replay is fed them in
        one feed too), and every outcome is still written with whatever the workflow
        does next, before the run moves on.

        Returns:
            The outcomes fed provisionally here, to be written next (maybe none).
        """
        run_id = state.run.run_id
        requests = [*unwritten, *patch_requests(suspended.patches)]
        messages = self._retry_messages(state, unwritten)
        budget = self._inline.free_slots() - self._inline_claimed if self.inline_steps else 0
        inline_ids: set[str] = set()
        starts: list[EventRequest] = []
        for step in suspended.steps:
            cid = step.correlation_id
            requests.append(step_created_request(step))
            state.step_names[cid] = step.step_id
            if budget > 0:
                budget -= 1
                inline_ids.add(cid)
                starts.append(EventRequest(event_type="step_started", correlation_id=cid))
            else:
                messages.append(
                    step_message(run_id, cid, step.step_id, deployment_id=state.run.deployment_id)
                )
        # All step_created first: one suspension's steps are adjacent in the log.
        requests.extend(starts)
        requests.extend(wait_created_request(wait) for wait in suspended.waits)
        if suspended.waits:
            messages.append(state.wake_message([w.resume_at for w in suspended.waits]))
        # Other runs' writes may commit while this one is in flight: the slots its
        # inline steps will take are claimed until they start.
        self._inline_claimed += len(inline_ids)
        try:
            results = await self._append(state, requests, messages)
        finally:
            self._inline_claimed -= len(inline_ids)
        new = results[len(unwritten) :]  # from the patch markers on
        for result in new:
            step_record = result.step
            if result.event.event_type == "step_started" and step_record is not None:
                if step_record.step_id in inline_ids:
                    self._inline.start(state, step_record)
        logged = [r.event for r in new]
        # A wait created now may be due at once (the workflow's clock can lag): the
        # next turn completes it before it takes the finished steps' outcomes.
        if self.provisional and not suspended.waits and state.takes_finished_at_once():
            finished = self._inline.collect_finished(state)
            if finished:
                return self._feed_provisionally(state, finished, after=logged)
        state.feed(logged)
        return _Unwritten()

    async def _find_more_work(self, state: RunState) -> list[EventRequest] | None:
        """With nothing left to write: what to write next.

        Returns:
            The completions of due waits, or the outcomes of inline steps that
            finished while this handler slept (maybe none: the log was caught up
            after a nudge, or a near wait came due); None when nothing can happen
            here any more (no inline step runs, no wait is near): stop driving.
        """
        due = state.due_waits()
        if due:
            tracing.waits_completed(state.run, state.wait_times(due))
            return due
        if state.log_may_have_news:
            state.log_may_have_news = False
            await self._catch_up(state)
            return []
        if not state.inline_tasks and not state.wait_is_near(self.inline_wait_seconds):
            return None
        await state.wait_for_news()
        return self._inline.collect_finished(state)

    def _retry_messages(
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
                        deployment_id=state.run.deployment_id,
                        delay_seconds=retry_delay_seconds(request),
                    )
                )
        return messages

    # --- wake-ups and orphans -----------------------------------------------------------

    def _ensure_wake_up_message(self, state: RunState) -> None:
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
            run_id = state.run.run_id
            log.warning("wake-up of run %s not enqueued: %s", run_id, exc, extra=log_fields(run_id))

    def _requeue_orphaned_steps(self, state: RunState) -> None:
        """Re-enqueue steps created but not finished that no one seems to run.

        After a crash nothing else would run them; the idempotency key (the
        correlation id) makes this a no-op while their message is still queued.
        """
        if not isinstance(state.outcome, Suspended):
            return
        now = utc_now()
        enqueued = False
        for cid, step_name in state.outcome.outstanding_steps:
            if cid in state.inline_tasks:
                continue
            try:
                record = self.world.steps.get(state.run.run_id, cid)
            except WorldError:
                continue
            if record.status in STEP_TERMINAL:
                continue
            recently = (now - record.updated_at).total_seconds() < self.lease_seconds / 2
            if record.status == "running" and recently:
                continue  # probably running inline in another worker
            message = step_message(
                state.run.run_id, cid, step_name, deployment_id=state.run.deployment_id
            )
            self.world.queue.enqueue(
                message.queue, message.payload, idempotency_key=message.idempotency_key
            )
            enqueued = True
        if enqueued and self._on_enqueue is not None:
            self._on_enqueue()
