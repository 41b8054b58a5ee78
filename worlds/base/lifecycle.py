"""The shared, pure lifecycle rules: ``plan_events`` and the per-kind transitions.

Every world validates transitions with the code below, so they cannot drift
apart: a world loads the few records an event touches through a
``RecordLoader`` (inside its write transaction), ``plan_events`` checks the
lifecycle table and returns the records to write (``PlannedWrites``), and the
world writes them. ``wfkit.worlds.base.fold`` replays a whole log through the same
rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, assert_never

from pydantic import ValidationError

from wfkit.worlds.base.errors import (
    CorruptedLogError,
    EntityConflictError,
    HookNotFoundError,
    InvalidEventError,
    RunNotFoundError,
    StepNotFoundError,
    WaitNotFoundError,
)
from wfkit.worlds.base.records import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    Event,
    EventRequest,
    EventResult,
    EventType,
    Hook,
    Run,
    RunStatus,
    Step,
    Wait,
    copy_record,
    encode_json,
    new_id,
    parse_timestamp,
    trusted_constructor,
    utc_now,
)

# The records of the hot path, built without validation where every field's type
# is known here (``trusted_constructor``); anything else takes the validating
# constructor, so a record is the same either way (tests/worlds/test_trusted_records.py).
_trusted_event = trusted_constructor(Event)
_trusted_step = trusted_constructor(Step)
_result = trusted_constructor(EventResult)
_EVENT_TYPES: frozenset[str] = frozenset(EventType.__args__)  # type: ignore[attr-defined]


class RecordLoader(Protocol):
    """Read access to the current records, as a world sees them inside its write
    transaction. SQL worlds that allow concurrent writers should lock the rows they
    return (``SELECT … FOR UPDATE``) so that the check and the write are atomic.

    Optional fast path: a loader may also define ``load_run_status(run_id) ->
    RunStatus | None``; step, hook and wait events then read only the run's
    status instead of decoding the whole run."""

    def load_run(self, run_id: str) -> Run | None: ...

    def load_step(self, run_id: str, step_id: str) -> Step | None: ...

    def load_hook(self, hook_id: str) -> Hook | None: ...

    def load_active_hook_by_token(self, token: str) -> Hook | None: ...

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None: ...

    def load_waits_of_run(self, run_id: str) -> list[Wait]: ...

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None: ...

    def load_last_event_id(self, run_id: str) -> str | None: ...


@dataclass(slots=True)
class PlannedWrites:
    """What a world must write, in one transaction, to apply some event requests.

    ``events`` are appended in order. ``new_*`` are records to insert (creation),
    ``changed_*`` records to update by primary key; a record created and then
    changed in the same batch appears only in ``new_*`` (with its final value).
    ``released_runs`` lists ``(run_id, at)`` for runs that became terminal: the
    world disposes their active hooks and completes their waiting waits with
    ``updated_at``/``completed_at`` = ``at`` (after writing the records above).
    ``results`` are the EventResults to return, one per request;
    ``event_json`` maps each new event's id to its data as JSON text (what
    ``encode_json`` gave), so a world need not encode it again."""

    events: list[Event] = field(default_factory=list)
    new_runs: dict[str, Run] = field(default_factory=dict)
    changed_runs: dict[str, Run] = field(default_factory=dict)
    new_steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    changed_steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    new_hooks: dict[str, Hook] = field(default_factory=dict)
    changed_hooks: dict[str, Hook] = field(default_factory=dict)
    new_waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    changed_waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    released_runs: list[tuple[str, datetime]] = field(default_factory=list)
    results: list[EventResult] = field(default_factory=list)
    event_json: dict[str, str] = field(default_factory=dict)


class _Overlay:
    """A RecordLoader that sees the writes planned so far on top of the world's."""

    __slots__ = ("base", "plan", "released", "runs_read", "statuses_read")

    def __init__(self, base: RecordLoader, plan: PlannedWrites) -> None:
        self.base = base
        self.plan = plan
        self.released: set[str] = set()
        self.runs_read: dict[str, Run | None] = {}
        self.statuses_read: dict[str, RunStatus | None] = {}

    def run(self, run_id: str) -> Run | None:
        found = self.plan.new_runs.get(run_id) or self.plan.changed_runs.get(run_id)
        if found is not None:
            return found
        # Every event of a batch checks its run: read it from the world once.
        if run_id not in self.runs_read:
            self.runs_read[run_id] = self.base.load_run(run_id)
        return self.runs_read[run_id]

    def run_status(self, run_id: str) -> RunStatus | None:
        found = self.plan.new_runs.get(run_id) or self.plan.changed_runs.get(run_id)
        if found is None:
            found = self.runs_read.get(run_id)
        if found is not None:
            return found.status
        if run_id not in self.statuses_read:
            load_status = getattr(self.base, "load_run_status", None)
            if load_status is None:
                run = self.run(run_id)
                return None if run is None else run.status
            self.statuses_read[run_id] = load_status(run_id)
        return self.statuses_read[run_id]

    def step(self, run_id: str, step_id: str) -> Step | None:
        key = (run_id, step_id)
        found = self.plan.new_steps.get(key) or self.plan.changed_steps.get(key)
        return found if found is not None else self.base.load_step(run_id, step_id)

    def hook(self, hook_id: str) -> Hook | None:
        found = self.plan.new_hooks.get(hook_id) or self.plan.changed_hooks.get(hook_id)
        return found if found is not None else self.base.load_hook(hook_id)

    def active_hook_by_token(self, token: str) -> Hook | None:
        for pending in (self.plan.new_hooks, self.plan.changed_hooks):
            for hook in pending.values():
                if hook.token == token and hook.status == "active":
                    return hook
        held = self.base.load_active_hook_by_token(token)
        if held is None or held.run_id in self.released:
            return None
        shadow = self.plan.changed_hooks.get(held.hook_id)
        return held if shadow is None else None

    def wait(self, run_id: str, wait_id: str) -> Wait | None:
        key = (run_id, wait_id)
        found = self.plan.new_waits.get(key) or self.plan.changed_waits.get(key)
        return found if found is not None else self.base.load_wait(run_id, wait_id)

    def waits_of_run(self, run_id: str) -> list[Wait]:
        """The run's waits as the planned writes leave them (stored ones, then new)."""
        planned = {**self.plan.changed_waits, **self.plan.new_waits}
        found = [
            planned.pop((wait.run_id, wait.wait_id), wait)
            for wait in self.base.load_waits_of_run(run_id)
        ]
        return found + [wait for key, wait in planned.items() if key[0] == run_id]

    def latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        for event in reversed(self.plan.events):
            if event.run_id == run_id and event.event_type == event_type:
                return event
        return self.base.load_latest_event(run_id, event_type)

    def put_run(self, run: Run, *, new: bool) -> None:
        if new:
            self.plan.new_runs[run.run_id] = run
        elif run.run_id in self.plan.new_runs:
            self.plan.new_runs[run.run_id] = run
        else:
            self.plan.changed_runs[run.run_id] = run

    def put_step(self, step: Step, *, new: bool) -> None:
        key = (step.run_id, step.step_id)
        target = (
            self.plan.new_steps if new or key in self.plan.new_steps else self.plan.changed_steps
        )
        target[key] = step

    def put_hook(self, hook: Hook, *, new: bool) -> None:
        target = (
            self.plan.new_hooks
            if new or hook.hook_id in self.plan.new_hooks
            else self.plan.changed_hooks
        )
        target[hook.hook_id] = hook

    def put_wait(self, wait: Wait, *, new: bool) -> None:
        key = (wait.run_id, wait.wait_id)
        target = (
            self.plan.new_waits if new or key in self.plan.new_waits else self.plan.changed_waits
        )
        target[key] = wait

    def release_run(self, run_id: str, at: datetime) -> None:
        """Dispose the run's hooks and complete its waits among the planned records."""
        self.released.add(run_id)
        self.plan.released_runs.append((run_id, at))
        for pending in (self.plan.new_hooks, self.plan.changed_hooks):
            for hook_id, hook in list(pending.items()):
                if hook.run_id == run_id and hook.status == "active":
                    pending[hook_id] = copy_record(hook, {"status": "disposed", "updated_at": at})
        for pending_waits in (self.plan.new_waits, self.plan.changed_waits):
            for key, wait in list(pending_waits.items()):
                if wait.run_id == run_id and wait.status == "waiting":
                    pending_waits[key] = copy_record(
                        wait, {"status": "completed", "updated_at": at, "completed_at": at}
                    )


def _require_correlation(event: Event) -> str:
    if not event.correlation_id:
        raise InvalidEventError(f"{event.event_type} needs a correlation_id")
    return event.correlation_id


def _require_field(event: Event, name: str) -> Any:
    if name not in event.data:
        raise InvalidEventError(f"{event.event_type} needs data[{name!r}]")
    return event.data[name]


def _live_run(view: _Overlay, event: Event) -> Run:
    run = view.run(event.run_id)
    if run is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if run.status in RUN_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: run {run.run_id!r} is already {run.status}"
        )
    return run


def _check_run_is_live(view: _Overlay, event: Event) -> None:
    status = view.run_status(event.run_id)
    if status is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if status in RUN_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: run {event.run_id!r} is already {status}"
        )


RunEventType = Literal[
    "run_created", "run_started", "run_completed", "run_failed", "run_cancelled", "run_retried"
]
StepEventType = Literal[
    "step_created", "step_started", "step_retrying", "step_completed", "step_failed"
]
HookEventType = Literal["hook_created", "hook_conflict", "hook_received", "hook_disposed"]
WaitEventType = Literal["wait_created", "wait_completed"]


def _apply_run_event(view: _Overlay, event: Event, event_type: RunEventType) -> EventResult:
    at = event.created_at
    if event_type == "run_created":
        if view.run(event.run_id) is not None:
            raise EntityConflictError(f"run {event.run_id!r} already exists")
        workflow_name = _require_field(event, "workflow_name")
        run = Run(
            run_id=event.run_id,
            workflow_name=workflow_name,
            status="pending",
            input=event.data.get("input"),
            deployment_id=event.data.get("deployment_id") or "",
            execution_context=event.data.get("execution_context") or {},
            spec_version=event.spec_version,
            created_at=at,
            updated_at=at,
            **_flow_control_fields(event),
        )
        view.put_run(run, new=True)
        return _result(event=event, run=run)
    if event_type == "run_retried":
        return _apply_run_retried(view, event)
    run = _live_run(view, event)
    match event_type:
        case "run_started":
            if run.status != "pending":
                # Only reachable through a fold: a live world never appends a second one.
                return _result(event=event, run=run)
            if run.queue_name is not None and not isinstance(event.data.get("admitted_by"), str):
                # A run waiting in a named queue starts only when a worker admits it.
                raise EntityConflictError(
                    f"run_started refused: run {run.run_id!r} waits in queue "
                    f"{run.queue_name!r} until a worker admits it"
                )
            started: dict[str, Any] = {"status": "running", "started_at": at, "updated_at": at}
            if isinstance(event.data.get("admitted_by"), str):
                started["admitted_by"] = event.data["admitted_by"]
            run = copy_record(run, started)
        case "run_cancelled":
            run = copy_record(run, {"status": "cancelled", "completed_at": at, "updated_at": at})
        case "run_completed" | "run_failed":
            if run.status != "running":
                raise EntityConflictError(
                    f"{event_type} refused: run {run.run_id!r} is {run.status}, not running"
                )
            if event_type == "run_completed":
                update: dict[str, Any] = {"status": "completed", "output": event.data.get("output")}
            else:
                update = {"status": "failed", "error": event.data.get("error")}
            run = copy_record(run, {**update, "completed_at": at, "updated_at": at})
        case _:
            assert_never(event_type)
    view.put_run(run, new=False)
    if run.status in RUN_TERMINAL:
        view.release_run(run.run_id, at)
    return _result(event=event, run=run)


def _flow_control_fields(event: Event) -> dict[str, Any]:
    """The optional flow-control fields ``run_created`` may carry: the idempotency
    key, the deadline, the named queue with its key and priority."""
    data = event.data
    fields: dict[str, Any] = {}
    for name in ("idempotency_key", "queue_name", "queue_key"):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidEventError(f"run_created: {name} must be a string")
            fields[name] = value
    priority = data.get("queue_priority")
    if priority is not None:
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidEventError("run_created: queue_priority must be an integer")
        fields["queue_priority"] = priority
    if data.get("deadline_at") is not None:
        fields["deadline_at"] = parse_timestamp(data["deadline_at"])
    return fields


def _apply_run_retried(view: _Overlay, event: Event) -> EventResult:
    """``run_retried``: a failed run runs again (failed -> running), from its log.

    The failure released the run's waits without events (``release_run``): the
    waits completed at the failure's very time are reopened, so the replay on the
    current code waits for them again; the fold applies this same rule, so the
    records stay equal to the log's fold. Hooks the failure disposed stay disposed
    (their tokens may have been taken by other runs since).
    """
    run = view.run(event.run_id)
    if run is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if run.status != "failed":
        raise EntityConflictError(
            f"run_retried refused: run {run.run_id!r} is {run.status}; only a failed run "
            "can be retried"
        )
    at = event.created_at
    failed_at = run.completed_at
    for wait in view.waits_of_run(run.run_id):
        if wait.status == "completed" and wait.completed_at == failed_at:
            reopened = copy_record(
                wait, {"status": "waiting", "completed_at": None, "updated_at": at}
            )
            view.put_wait(reopened, new=False)
    run = copy_record(
        run, {"status": "running", "error": None, "completed_at": None, "updated_at": at}
    )
    view.put_run(run, new=False)
    return _result(event=event, run=run)


def _existing_step(current: Step | None, event: Event, step_id: str, *, running: bool) -> Step:
    """The step an event changes: it exists and is not terminal (and, when
    ``running``, is running)."""
    if current is None:
        raise StepNotFoundError(f"step {step_id!r} of run {event.run_id!r} not found")
    if current.status in STEP_TERMINAL:
        raise EntityConflictError(
            f"{event.event_type} refused: step {step_id!r} is already {current.status}"
        )
    if running and current.status != "running":
        raise EntityConflictError(
            f"{event.event_type} refused: step {step_id!r} is {current.status}, not running"
        )
    return current


def _apply_step_event(view: _Overlay, event: Event, event_type: StepEventType) -> EventResult:
    step_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.step(event.run_id, step_id)
    match event_type:
        case "step_created":
            if current is not None:
                raise EntityConflictError(
                    f"step {step_id!r} of run {event.run_id!r} already exists"
                )
            step_name = _require_field(event, "step_name")
            # A step_name that is not exactly a str takes validation (and its error).
            make = _trusted_step if type(step_name) is str else Step
            step = make(
                run_id=event.run_id,
                step_id=step_id,
                step_name=step_name,
                status="pending",
                input=event.data.get("input"),
                created_at=at,
                updated_at=at,
            )
            view.put_step(step, new=True)
            return _result(event=event, step=step)
        case "step_started":
            current = _existing_step(current, event, step_id, running=False)
            step = copy_record(
                current,
                {
                    "status": "running",
                    "attempt": current.attempt + 1,
                    "started_at": current.started_at or at,
                    "updated_at": at,
                },
            )
        case "step_retrying":
            current = _existing_step(current, event, step_id, running=True)
            retry_raw = event.data.get("retry_after")
            step = copy_record(
                current,
                {
                    "status": "pending",
                    "error": event.data.get("error"),
                    "retry_after": parse_timestamp(retry_raw) if retry_raw is not None else None,
                    "updated_at": at,
                },
            )
        case "step_completed":
            current = _existing_step(current, event, step_id, running=True)
            step = copy_record(
                current,
                {
                    "status": "completed",
                    "output": event.data.get("result"),
                    "completed_at": at,
                    "updated_at": at,
                },
            )
        case "step_failed":
            current = _existing_step(current, event, step_id, running=True)
            step = copy_record(
                current,
                {
                    "status": "failed",
                    "error": event.data.get("error"),
                    "completed_at": at,
                    "updated_at": at,
                },
            )
        case _:
            assert_never(event_type)
    view.put_step(step, new=False)
    return _result(event=event, step=step)


def _apply_hook_event(view: _Overlay, event: Event, event_type: HookEventType) -> EventResult:
    hook_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.hook(hook_id)
    match event_type:
        case "hook_created" | "hook_conflict":
            if current is not None:
                raise EntityConflictError(f"hook {hook_id!r} already exists")
            hook = Hook(
                run_id=event.run_id,
                hook_id=hook_id,
                token=_require_field(event, "token"),
                status="active" if event_type == "hook_created" else "conflicted",
                metadata=event.data.get("metadata"),
                is_webhook=bool(event.data.get("is_webhook", False)),
                respond_with=event.data.get("respond_with"),
                created_at=at,
                updated_at=at,
            )
            if hook.status == "active" and view.active_hook_by_token(hook.token) is not None:
                raise CorruptedLogError(
                    f"hook_created for token {hook.token!r} held by another hook"
                )
            view.put_hook(hook, new=True)
            return _result(event=event, hook=hook)
        case "hook_received":
            if current is None or current.run_id != event.run_id:
                raise HookNotFoundError(f"hook {hook_id!r} of run {event.run_id!r} not found")
            if current.status != "active":
                raise HookNotFoundError(f"hook {hook_id!r} is {current.status}, not active")
            hook = copy_record(current, {"updated_at": at})
        case "hook_disposed":
            if current is None or current.run_id != event.run_id:
                raise HookNotFoundError(f"hook {hook_id!r} of run {event.run_id!r} not found")
            if current.status != "active":
                raise EntityConflictError(
                    f"hook_disposed refused: hook {hook_id!r} is {current.status}"
                )
            hook = copy_record(current, {"status": "disposed", "updated_at": at})
        case _:
            assert_never(event_type)
    view.put_hook(hook, new=False)
    return _result(event=event, hook=hook)


def _apply_wait_event(view: _Overlay, event: Event, event_type: WaitEventType) -> EventResult:
    wait_id = _require_correlation(event)
    _check_run_is_live(view, event)
    at = event.created_at
    current = view.wait(event.run_id, wait_id)
    match event_type:
        case "wait_created":
            if current is not None:
                raise EntityConflictError(
                    f"wait {wait_id!r} of run {event.run_id!r} already exists"
                )
            wait = Wait(
                run_id=event.run_id,
                wait_id=wait_id,
                status="waiting",
                resume_at=parse_timestamp(_require_field(event, "resume_at")),
                created_at=at,
                updated_at=at,
            )
            view.put_wait(wait, new=True)
            return _result(event=event, wait=wait)
        case "wait_completed":
            if current is None:
                raise WaitNotFoundError(f"wait {wait_id!r} of run {event.run_id!r} not found")
            if current.status != "waiting":
                raise EntityConflictError(
                    f"wait_completed refused: wait {wait_id!r} is already completed"
                )
            wait = copy_record(
                current, {"status": "completed", "completed_at": at, "updated_at": at}
            )
        case _:
            assert_never(event_type)
    view.put_wait(wait, new=False)
    return _result(event=event, wait=wait)


def _apply_patch_marked(view: _Overlay, event: Event) -> EventResult:
    """``patch_marked`` (``wfkit.patched`` took a new branch): a running run's log only.

    It changes no record; replay reads it (``wfkit.runtime.replay.session``).
    """
    patch_id = _require_field(event, "patch_id")
    if not isinstance(patch_id, str) or not patch_id:
        raise InvalidEventError(f"patch_marked needs a non-empty string patch_id, got {patch_id!r}")
    run = view.run(event.run_id)
    if run is None:
        raise RunNotFoundError(f"run {event.run_id!r} not found")
    if run.status != "running":
        raise EntityConflictError(
            f"patch_marked refused: run {event.run_id!r} is {run.status}, not running"
        )
    return _result(event=event, run=run)


def _apply_event(view: _Overlay, event: Event) -> EventResult:
    """Apply one event through the transitions of its entity.

    One dispatcher over every event type, ending in ``assert_never``: a type added
    to ``EventType`` without a transition is a type error, and an event whose type
    no transition knows (built without validation) fails loudly instead of being
    treated as some other event.

    Raises:
        AssertionError: the event's type is none of ``EventType``.
    """
    event_type = event.event_type
    match event_type:
        case (
            "run_created"
            | "run_started"
            | "run_completed"
            | "run_failed"
            | "run_cancelled"
            | "run_retried"
        ):
            return _apply_run_event(view, event, event_type)
        case "step_created" | "step_started" | "step_retrying" | "step_completed" | "step_failed":
            return _apply_step_event(view, event, event_type)
        case "hook_created" | "hook_conflict" | "hook_received" | "hook_disposed":
            return _apply_hook_event(view, event, event_type)
        case "wait_created" | "wait_completed":
            return _apply_wait_event(view, event, event_type)
        case "patch_marked":
            return _apply_patch_marked(view, event)
        case _:
            assert_never(event_type)


def run_id_for_create(run_id: str | None, request: EventRequest) -> str:
    """The run a single ``Events.create`` call writes to: ``run_id``, or for a
    ``run_created`` without one a new ``wrun_…`` id.

    Raises:
        InvalidEventError: ``run_id`` is None for an event other than ``run_created``.
    """
    if run_id is None:
        if request.event_type != "run_created":
            raise InvalidEventError(f"{request.event_type} needs a run_id")
        run_id = new_id("wrun")
    return run_id


def plan_events(
    loader: RecordLoader,
    run_id: str,
    requests: Sequence[EventRequest],
    *,
    now: datetime | None = None,
    expected_last_event_id: str | None = None,
) -> PlannedWrites:
    """Check event requests against the lifecycle table and plan the writes.

    Pure apart from reading through ``loader``; raises before anything is planned
    to be written, so a world that calls it first and writes afterwards is
    all-or-nothing. Requests are applied in order, each seeing the previous ones.

    Besides the table's rules: ``run_started`` on a running run appends nothing and
    returns the run with its latest ``run_started`` event; ``hook_created`` for a
    token that another active hook holds becomes a ``hook_conflict`` event with a
    ``conflicted`` hook record; a run that becomes terminal releases its hooks
    and waits (``PlannedWrites.released_runs``).

    Args:
        loader: reads current records inside the world's transaction.
        run_id: the run every request belongs to (already generated for a new run).
        requests: the events to append.
        now: the events' ``created_at`` (default: the current UTC time).
        expected_last_event_id: when given, refuse unless it is the id of the
            run's last stored event (optimistic concurrency).

    Returns:
        The planned writes; ``results`` holds one EventResult per request.

    Raises:
        EntityConflictError: a refused transition or a duplicate creation.
        RunNotFoundError, StepNotFoundError, HookNotFoundError, WaitNotFoundError:
            the event's entity does not exist (or the hook is not active).
        InvalidEventError: a request lacks a correlation id or a required field,
            or its data is not JSON.
    """
    at = now or utc_now()
    plan = PlannedWrites()
    view = _Overlay(loader, plan)
    if expected_last_event_id is not None:
        last = loader.load_last_event_id(run_id)
        if last != expected_last_event_id:
            raise EntityConflictError(
                f"run {run_id!r} moved on: its last event is {last!r}, "
                f"not {expected_last_event_id!r}"
            )
    for request in requests:
        if request.event_type == "hook_conflict":
            raise InvalidEventError("hook_conflict is written by the world, not requested")
        data, data_json = encode_json(request.data)
        event_type: EventType = request.event_type
        if event_type == "run_started":
            run = view.run(run_id)
            if run is not None and run.status == "running":
                latest = view.latest_event(run_id, "run_started")
                if latest is None:
                    raise CorruptedLogError(f"run {run_id!r} is running but has no run_started")
                plan.results.append(_result(event=latest, run=run))
                continue
        if event_type == "hook_created":
            token = data.get("token")
            holder = view.active_hook_by_token(token) if isinstance(token, str) else None
            if holder is not None:
                event_type = "hook_conflict"
                data, data_json = encode_json({"token": token, "conflicting_run_id": holder.run_id})
        correlation_id = request.correlation_id
        created_at = at if request.created_at is None else parse_timestamp(request.created_at)
        # Values of exactly the declared types need no validation (``data`` is
        # fresh from ``encode_json``); anything else (a request built without
        # validation) takes it, with its error.
        make_event = (
            _trusted_event
            if type(run_id) is str
            and event_type in _EVENT_TYPES
            and (correlation_id is None or type(correlation_id) is str)
            and type(data) is dict
            and type(created_at) is datetime
            else Event
        )
        event = make_event(
            event_id=new_id("evnt"),
            run_id=run_id,
            event_type=event_type,
            correlation_id=correlation_id,
            data=data,
            created_at=created_at,
        )
        try:
            result = _apply_event(view, event)
        except ValidationError as exc:  # e.g. a token that is not a string
            raise InvalidEventError(f"{event.event_type}: malformed data: {exc}") from exc
        plan.events.append(event)
        plan.results.append(result)
        plan.event_json[event.event_id] = data_json
    return plan
