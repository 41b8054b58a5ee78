"""The durable calls of one replay, by correlation id and by state; which call an event is for.

``CallLedger`` is the replay session's bookkeeping (``wfkit.runtime.replay.session``):
every step, hook and wait call the workflow made, indexed by what the session must
report when it suspends (calls without a creation event, steps still running,
active waits, disposed hooks) and by correlation id for the events that settle
them. It also decides, for an event that no call of its kind takes, whether the
workflow's code changed (``REPLAY_DIVERGENCE``) or the log is corrupted.
"""

from __future__ import annotations

from typing import TypeVar

from wfkit.runtime.replay.calls import CorrelationIds, HookCall, StepCall, WaitCall
from wfkit.runtime.replay.divergence import (
    RunLabel,
    code_changed,
    describe_call,
    describe_event,
)
from wfkit.runtime.replay.outcome import (
    PendingHook,
    PendingStep,
    PendingWait,
    ReplayFailure,
    Suspended,
    unconsumed,
)
from wfkit.worlds.base import Event

__all__ = ["CallLedger"]

Call = StepCall | HookCall | WaitCall
_CallT = TypeVar("_CallT", StepCall, HookCall, WaitCall)


class CallLedger:
    """Every durable call of one replay.

    Args:
        ids: the run's correlation id stream (the ledger asks it which call an id names).
        label: how divergence messages name the run.
    """

    def __init__(self, ids: CorrelationIds, label: RunLabel) -> None:
        self.ids = ids
        self.label = label
        self.calls: dict[str, Call] = {}
        self.uncreated_steps: dict[str, StepCall] = {}
        self.uncreated_hooks: dict[str, HookCall] = {}
        self.uncreated_waits: dict[str, WaitCall] = {}
        self.outstanding_steps: dict[str, StepCall] = {}
        self.active_waits: dict[str, WaitCall] = {}
        self.timers: dict[int, WaitCall] = {}
        self.disposals: dict[str, HookCall] = {}
        self.live_hooks: dict[str, HookCall] = {}
        self.last_call: Call | None = None

    # --- recording calls ------------------------------------------------------------------

    def add_step(self, call: StepCall) -> None:
        """A step call, not created in the log yet."""
        self.calls[call.correlation_id] = call
        self.uncreated_steps[call.correlation_id] = call
        self.last_call = call

    def add_hook(self, call: HookCall) -> None:
        """A hook, not created in the log yet."""
        self.calls[call.correlation_id] = call
        self.uncreated_hooks[call.correlation_id] = call
        self.last_call = call

    def add_wait(self, wait: WaitCall) -> None:
        """A durable timer, not created in the log yet."""
        self.calls[wait.correlation_id] = wait
        self.uncreated_waits[wait.correlation_id] = wait
        self.active_waits[wait.correlation_id] = wait
        self.timers[id(wait.handle)] = wait
        self.last_call = wait

    def clear(self) -> None:
        """Forget every call (the session closed)."""
        for table in (
            self.calls,
            self.uncreated_steps,
            self.uncreated_hooks,
            self.uncreated_waits,
            self.outstanding_steps,
            self.active_waits,
            self.timers,
            self.disposals,
            self.live_hooks,
        ):
            table.clear()
        self.last_call = None

    # --- what a suspension reports -----------------------------------------------------------

    def drop_cancelled_uncreated_steps(self) -> None:
        """Forget steps cancelled before their ``step_created`` was written: never created.

        They keep their ids, and their consumers should the log still name them.
        """
        if not self.uncreated_steps:
            return
        cancelled = [c for c in self.uncreated_steps.values() if c.future.cancelled()]
        for call in cancelled:
            del self.uncreated_steps[call.correlation_id]

    def can_progress(self) -> bool:
        """Whether some event could still arrive that a call is waiting for."""
        return bool(
            self.uncreated_steps
            or self.uncreated_hooks
            or self.uncreated_waits
            or self.outstanding_steps
            or self.active_waits
            or self.live_hooks
            or self.disposals
        )

    def suspension(self) -> Suspended:
        """What the orchestrator must write or wait for, each kind in call order."""
        # Once per feed: empty tables cost a truth test each, not a generator.
        hooks = self.uncreated_hooks
        steps = self.uncreated_steps
        waits = self.uncreated_waits
        outstanding = self.outstanding_steps
        active = self.active_waits
        return Suspended(
            hooks=tuple(
                [
                    PendingHook(c.correlation_id, c.token, c.metadata, c.is_webhook, c.respond_with)
                    for c in hooks.values()
                ]
            )
            if hooks
            else (),
            steps=tuple([PendingStep(c.correlation_id, c.step_id, c.input) for c in steps.values()])
            if steps
            else (),
            waits=tuple([PendingWait(c.correlation_id, c.resume_at) for c in waits.values()])
            if waits
            else (),
            disposals=tuple(self.disposals) if self.disposals else (),
            outstanding_steps=tuple([(c.correlation_id, c.step_id) for c in outstanding.values()])
            if outstanding
            else (),
            next_wake=min([w.resume_at for w in active.values()]) if active else None,
        )

    # --- which call an event is for ----------------------------------------------------------

    def call_for(self, event: Event, kind: type[_CallT], *, returned: bool) -> _CallT:
        """The call of ``kind`` that ``event`` settles.

        Args:
            event: a step, hook or wait event of the log.
            kind: the call class its event type belongs to.
            returned: whether the workflow function has already returned (for the message).

        Raises:
            ReplayFailure: ``REPLAY_DIVERGENCE`` when the code no longer makes that
                call there, ``CORRUPTED_EVENT_LOG`` when no call of this run could
                have written the event.
        """
        call = self.calls.get(event.correlation_id or "")
        if isinstance(call, kind):
            return call
        raise self._misplaced(event, call, returned=returned)

    def _misplaced(self, event: Event, call: Call | None, *, returned: bool) -> ReplayFailure:
        if call is None:
            correlation_id = event.correlation_id or ""
            position = self.ids.position(correlation_id)
            if position is None:
                return unconsumed(event)  # not an id this run's calls are named with
            # The same position under another prefix: a call of another kind there.
            number = correlation_id.partition("_")[2]
            call = next(
                (c for p in ("step", "hook", "wait") if (c := self.calls.get(f"{p}_{number}"))),
                None,
            )
            if call is None:
                if position <= self.ids.issued:
                    return unconsumed(event)  # its call already ended: a repeated event
                return self._call_not_made(event, returned=returned)
        return code_changed(
            self.label, site=call.site, recorded=describe_event(event), current=describe_call(call)
        )

    def _call_not_made(self, event: Event, *, returned: bool) -> ReplayFailure:
        """The log records a call the code has not made by this point: it makes fewer."""
        last = self.last_call
        if last is None:
            current = "returns without a durable call" if returned else "makes no durable call"
            return code_changed(
                self.label, site=None, recorded=describe_event(event), current=current
            )
        after = describe_call(last, verb=False)
        current = f"returns after {after}" if returned else f"makes no further call after {after}"
        return code_changed(
            self.label, site=last.site, recorded=describe_event(event), current=current
        )
