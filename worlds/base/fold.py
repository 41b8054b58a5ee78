"""Folding stored event logs into records, and checking a world against the fold.

``fold_events`` replays a whole log through the lifecycle rules of
``wfkit.worlds.base.lifecycle``; ``wfkit verify`` compares that fold with the
materialized records (``diff_run_records``). ``StateLoader`` is the in-memory
``RecordLoader`` both the fold and ``MemoryWorld`` use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from wfkit.worlds.base.errors import CorruptedLogError, RunNotFoundError, WorldError
from wfkit.worlds.base.lifecycle import PlannedWrites, _apply_event, _Overlay
from wfkit.worlds.base.protocols import World
from wfkit.worlds.base.records import Event, EventType, Hook, Run, RunStatus, Step, Wait


@dataclass
class FoldedState:
    """The records a fold of event logs gives, keyed like the worlds key them."""

    runs: dict[str, Run] = field(default_factory=dict)
    steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    hooks: dict[str, Hook] = field(default_factory=dict)
    waits: dict[tuple[str, str], Wait] = field(default_factory=dict)


class StateLoader:
    """A RecordLoader over a FoldedState in memory (used by fold and MemoryWorld)."""

    def __init__(
        self, state: FoldedState, events: Mapping[str, Sequence[Event]] | None = None
    ) -> None:
        self.state = state
        self.events = events if events is not None else {}
        self.tokens: dict[str, str] = {
            hook.token: hook.hook_id for hook in state.hooks.values() if hook.status == "active"
        }
        # Per-run keys in creation order, so per-run reads never scan every run.
        self.step_keys: dict[str, list[tuple[str, str]]] = {}
        self.hook_ids: dict[str, list[str]] = {}
        self.wait_keys: dict[str, list[tuple[str, str]]] = {}
        for step_key in state.steps:
            self.step_keys.setdefault(step_key[0], []).append(step_key)
        for hook in state.hooks.values():
            self.hook_ids.setdefault(hook.run_id, []).append(hook.hook_id)
        for wait_key in state.waits:
            self.wait_keys.setdefault(wait_key[0], []).append(wait_key)

    def steps_of(self, run_id: str) -> list[Step]:
        """The run's steps in creation order."""
        return [self.state.steps[key] for key in self.step_keys.get(run_id, ())]

    def hooks_of(self, run_id: str) -> list[Hook]:
        """The run's hooks in creation order."""
        return [self.state.hooks[key] for key in self.hook_ids.get(run_id, ())]

    def waits_of(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order."""
        return [self.state.waits[key] for key in self.wait_keys.get(run_id, ())]

    def load_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        return self.state.runs.get(run_id)

    def load_run_status(self, run_id: str) -> RunStatus | None:
        """The run's status, or None when it does not exist."""
        run = self.state.runs.get(run_id)
        return None if run is None else run.status

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        """The step, or None."""
        return self.state.steps.get((run_id, step_id))

    def load_hook(self, hook_id: str) -> Hook | None:
        """The hook (any status), or None."""
        return self.state.hooks.get(hook_id)

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        """The active hook holding ``token``, or None."""
        hook_id = self.tokens.get(token)
        return None if hook_id is None else self.state.hooks[hook_id]

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        """The wait, or None."""
        return self.state.waits.get((run_id, wait_id))

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        """The run's waits in creation order (as ``waits_of``)."""
        return self.waits_of(run_id)

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        """The run's most recent event of ``event_type``, or None."""
        for event in reversed(self.events.get(run_id, ())):
            if event.event_type == event_type:
                return event
        return None

    def load_last_event_id(self, run_id: str) -> str | None:
        """The id of the run's last event, or None for an empty log."""
        events = self.events.get(run_id)
        return events[-1].event_id if events else None

    def apply(self, plan: PlannedWrites) -> None:
        """Write ``plan`` into the state (the in-memory equivalent of a commit)."""
        state = self.state
        state.runs.update(plan.new_runs)
        state.runs.update(plan.changed_runs)
        for step_key in plan.new_steps:
            self.step_keys.setdefault(step_key[0], []).append(step_key)
        state.steps.update(plan.new_steps)
        state.steps.update(plan.changed_steps)
        for hook in plan.new_hooks.values():
            self.hook_ids.setdefault(hook.run_id, []).append(hook.hook_id)
        for hooks in (plan.new_hooks, plan.changed_hooks):
            for hook in hooks.values():
                self._put_hook(hook)
        for wait_key in plan.new_waits:
            self.wait_keys.setdefault(wait_key[0], []).append(wait_key)
        state.waits.update(plan.new_waits)
        state.waits.update(plan.changed_waits)
        for run_id, at in plan.released_runs:
            for hook in self.hooks_of(run_id):
                if hook.status == "active":
                    self._put_hook(hook.model_copy(update={"status": "disposed", "updated_at": at}))
            for wait in self.waits_of(run_id):
                if wait.status == "waiting":
                    state.waits[(wait.run_id, wait.wait_id)] = wait.model_copy(
                        update={"status": "completed", "updated_at": at, "completed_at": at}
                    )

    def _put_hook(self, hook: Hook) -> None:
        self.state.hooks[hook.hook_id] = hook
        if hook.status == "active":
            self.tokens[hook.token] = hook.hook_id
        elif self.tokens.get(hook.token) == hook.hook_id:
            del self.tokens[hook.token]


def fold_events(events: Iterable[Event]) -> FoldedState:
    """Replay stored events (of one or many runs, each run's in log order) through
    the lifecycle rules and return the records they give.

    This is what every world's materialized records must equal; ``wfkit verify``
    compares the two with ``diff_run_records``.

    Raises:
        CorruptedLogError: an event the rules refuse at its position in the log.
    """
    state = FoldedState()
    loader = StateLoader(state)
    for event in events:
        plan = PlannedWrites()
        try:
            result = _apply_event(_Overlay(loader, plan), event)
        except (WorldError, ValidationError) as exc:
            raise CorruptedLogError(
                f"event {event.event_id} ({event.event_type}) of run {event.run_id!r} "
                f"cannot be folded: {exc}"
            ) from exc
        plan.events.append(event)
        plan.results.append(result)
        loader.apply(plan)
    return state


def diff_run_records(world: World, run_id: str) -> list[str]:
    """Compare a fresh fold of one run's log with the world's materialized records.

    Returns:
        Human-readable differences; empty when the records match the fold.
    """
    try:
        folded = fold_events(world.events.list(run_id))
    except CorruptedLogError as exc:
        return [str(exc)]
    problems: list[str] = []

    def compare(
        kind: str, key: object, expected: BaseModel | None, actual: BaseModel | None
    ) -> None:
        if expected != actual:
            problems.append(f"{kind} {key}: fold gives {expected!r}, world has {actual!r}")

    try:
        actual_run: Run | None = world.runs.get(run_id)
    except RunNotFoundError:
        actual_run = None
    compare("run", run_id, folded.runs.get(run_id), actual_run)
    actual_steps = {(s.run_id, s.step_id): s for s in world.steps.list(run_id)}
    for key in sorted(set(folded.steps) | set(actual_steps)):
        compare("step", key, folded.steps.get(key), actual_steps.get(key))
    actual_hooks = {h.hook_id: h for h in world.hooks.list(run_id=run_id)}
    for hook_key in sorted(set(folded.hooks) | set(actual_hooks)):
        compare("hook", hook_key, folded.hooks.get(hook_key), actual_hooks.get(hook_key))
    actual_waits = {(w.run_id, w.wait_id): w for w in world.waits.list(run_id)}
    for wait_key in sorted(set(folded.waits) | set(actual_waits)):
        compare("wait", wait_key, folded.waits.get(wait_key), actual_waits.get(wait_key))
    return problems
