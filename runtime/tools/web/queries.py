"""What the inspector reads from a world. Every function here is synchronous and blocking:
the app calls them in a worker thread (``anyio.to_thread``), never on the event loop.

Parent and child runs. A workflow's ``await start(child)`` is the built-in step
``step//wfkit//start``; the child's run id is derived from that step's id (``step_X`` →
``wrun_X``), so a parent's children are read off its steps. The other direction needs a
search, because a child run records nothing about its parent: the step id is a ULID
whose timestamp is the parent's start (``replay/calls.py``), so the runs started in that
millisecond are the candidates, and ``steps.get(candidate, step_X)`` confirms the one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wfkit.runtime.tools.tables import short_name
from wfkit.runtime.tools.web.markup import ACTIVE, RUN_STATUSES, fmt_time
from wfkit.runtime.tools.web.timeline import START_STEP_ID, child_run_id
from wfkit.worlds.base import (
    RUN_TERMINAL,
    Event,
    Hook,
    Run,
    RunNotFoundError,
    RunStatus,
    Step,
    StepNotFoundError,
    Wait,
    World,
)

PER_PAGE = 50
MAX_PER_PAGE = 500
SHORT_NAME_SCAN = 5000
"""Runs scanned when ``?workflow=`` is a short name (the world filters by full id only)."""
PARENT_SCAN = 2000
"""Newest runs searched for a child run's parent."""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class BadFilter(ValueError):
    """A query parameter the runs list cannot use."""


@dataclass(frozen=True)
class RunsQuery:
    """The runs list's filters and page (1-based)."""

    status: str | None = None
    workflow: str | None = None
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, params: dict[str, str]) -> RunsQuery:
        """Read ``status``, ``workflow``, ``page`` and ``per_page`` from query parameters.

        Raises:
            BadFilter: an unknown status, or a page that is not a positive number.
        """
        status = params.get("status") or None
        if status and status not in RUN_STATUSES:
            raise BadFilter(f"unknown status {status!r}; one of {', '.join(RUN_STATUSES)}")
        numbers = {}
        for name, default, top in (("page", 1, 10**6), ("per_page", PER_PAGE, MAX_PER_PAGE)):
            raw = params.get(name) or str(default)
            if not raw.isdigit() or not 1 <= int(raw) <= top:
                raise BadFilter(f"{name} must be a whole number from 1 to {top}, not {raw!r}")
            numbers[name] = int(raw)
        workflow = (params.get("workflow") or "").strip() or None
        return cls(status, workflow, numbers["page"], numbers["per_page"])

    def params(self, **changes: object) -> dict[str, str]:
        """The query string parameters of this query with ``changes`` applied (for links)."""
        values: dict[str, object] = {
            "status": self.status,
            "workflow": self.workflow,
            "page": self.page,
            "per_page": self.per_page,
        }
        values.update(changes)
        defaults = {"page": 1, "per_page": PER_PAGE}
        return {k: str(v) for k, v in values.items() if v and defaults.get(k) != v}


@dataclass
class RunsPage:
    """One page of the runs list and what each row says beyond the record."""

    query: RunsQuery
    runs: list[Run]
    has_next: bool
    waiting: dict[str, str] = field(default_factory=dict)
    """For live runs: what each waits on (a hook, a sleep, a step)."""
    parents: dict[str, str] = field(default_factory=dict)
    """Child run id → parent run id, where both are on this page."""
    workflows: list[str] = field(default_factory=list)
    """Workflow ids seen on this page (the filter's suggestions)."""


def _page_of_runs(world: World, query: RunsQuery) -> tuple[list[Run], bool]:
    """The runs of the query's page, newest first, and whether a next page exists."""
    status: RunStatus | None = query.status  # type: ignore[assignment]  # checked in parse
    skip = (query.page - 1) * query.per_page
    wanted = skip + query.per_page + 1  # one more says whether a next page exists
    if query.workflow and "//" not in query.workflow:
        scanned = world.runs.list(status=status, limit=max(SHORT_NAME_SCAN, wanted))
        found = [r for r in scanned if short_name(r.workflow_name) == query.workflow][:wanted]
    else:
        found = world.runs.list(status=status, workflow_name=query.workflow, limit=wanted)
    return found[skip : skip + query.per_page], len(found) > skip + query.per_page


def list_runs_page(world: World, query: RunsQuery) -> RunsPage:
    """Runs newest first, filtered, one page of them, with their waits and parents."""
    runs, has_next = _page_of_runs(world, query)
    result = RunsPage(query, runs, has_next=has_next)
    result.waiting = {r.run_id: waiting_on(world, r) for r in runs if r.status in ACTIVE}
    result.parents = parents_on_page(world, runs)
    result.workflows = sorted({r.workflow_name for r in runs})
    return result


def waiting_on(world: World, run: Run) -> str:
    """What a live run is waiting for, in a few words: its hooks, sleeps and steps."""
    if run.status == "pending":
        return "queued: no worker has started it yet"
    parts: list[str] = []
    hooks = [h for h in world.hooks.list(run_id=run.run_id) if h.status == "active"]
    parts += [f"waiting for {'webhook' if h.is_webhook else 'hook'} {h.token}" for h in hooks]
    waits = [w for w in world.waits.list(run.run_id) if w.status == "waiting"]
    parts += [f"sleeping until {fmt_time(w.resume_at)}" for w in waits]
    for step in world.steps.list(run.run_id):
        name = short_name(step.step_name)
        if step.status == "running":
            parts.append(f"running {name} (attempt {step.attempt})")
        elif step.status == "pending" and step.retry_after is not None:
            parts.append(
                f"{name} failed attempt {step.attempt}, retrying at {fmt_time(step.retry_after)}"
            )
        elif step.status == "pending":
            parts.append(f"{name} queued")
    return "; ".join(parts) or "running"


def _ulid_millis(ulid: str) -> int | None:
    """The timestamp (ms) in a ULID's first ten characters, None if it is not one."""
    head = ulid[:10].upper()
    if len(head) != 10 or any(c not in _CROCKFORD for c in head):
        return None
    value = 0
    for char in head:
        value = value * 32 + _CROCKFORD.index(char)
    return value


def _started_ms(run: Run) -> int:
    """The millisecond the run's replay clock starts at (its correlation ids carry it)."""
    return int((run.started_at or run.created_at).timestamp() * 1000)


def _is_parent(world: World, candidate: Run, child_id: str) -> bool:
    step_id = "step_" + child_id.removeprefix("wrun_")
    try:
        return world.steps.get(candidate.run_id, step_id).step_name == START_STEP_ID
    except (StepNotFoundError, RunNotFoundError):
        return False


def parents_on_page(world: World, runs: list[Run]) -> dict[str, str]:
    """Child → parent for the runs of one page whose parent is on the same page."""
    by_ms: dict[int, list[Run]] = {}
    for run in runs:
        by_ms.setdefault(_started_ms(run), []).append(run)
    found: dict[str, str] = {}
    for run in runs:
        millis = _ulid_millis(run.run_id.removeprefix("wrun_"))
        for candidate in by_ms.get(millis, []) if millis is not None else []:
            if candidate.run_id != run.run_id and _is_parent(world, candidate, run.run_id):
                found[run.run_id] = candidate.run_id
                break
    return found


def find_parent(world: World, child: Run) -> str | None:
    """The run whose ``start`` step created ``child``, or None (not a child, or its parent
    is older than the newest ``PARENT_SCAN`` runs)."""
    millis = _ulid_millis(child.run_id.removeprefix("wrun_"))
    if millis is None or millis > int(child.created_at.timestamp() * 1000):
        return None  # a parent starts before its child exists
    for candidate in world.runs.list(limit=PARENT_SCAN):
        if candidate.run_id != child.run_id and _started_ms(candidate) == millis:
            if _is_parent(world, candidate, child.run_id):
                return candidate.run_id
    return None


class ParentCache:
    """Remembers :func:`find_parent`'s answers: who started a run never changes, and the
    run page (re-read on every live update) should not search on each read."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._known: dict[str, str | None] = {}

    def parent_of(self, world: World, run: Run) -> str | None:
        """``run``'s parent, searched once per run id."""
        if run.run_id not in self._known:
            if len(self._known) >= self._size:
                self._known.pop(next(iter(self._known)))
            self._known[run.run_id] = find_parent(world, run)
        return self._known[run.run_id]


@dataclass
class RunView:
    """Everything the run page shows, read in one go."""

    run: Run
    steps: list[Step]
    events: list[Event]
    waits: list[Wait]
    hooks: list[Hook]
    streams: list[str]
    children: dict[str, Run]
    parent: str | None
    now: datetime


def load_run_view(world: World, run_id: str, parents: ParentCache) -> RunView:
    """The run, its steps, events, waits, hooks, streams, child runs and parent.

    Raises:
        RunNotFoundError: no such run.
    """
    run = world.runs.get(run_id)
    events = world.events.list(run_id)
    steps = sorted(world.steps.list(run_id), key=lambda s: (s.created_at, s.step_id))
    children: dict[str, Run] = {}
    for step in steps:
        if step.step_name == START_STEP_ID:
            try:
                children[child_run_id(step.step_id)] = world.runs.get(child_run_id(step.step_id))
            except RunNotFoundError:
                pass  # its start step has not run yet
    return RunView(
        run=run,
        steps=steps,
        events=events,
        waits=world.waits.list(run_id),
        hooks=world.hooks.list(run_id=run_id),
        streams=world.streams.list(run_id),
        children=children,
        parent=parents.parent_of(world, run),
        now=datetime.now(UTC),
    )


# --- live-update tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """A short token that changes whenever what a page shows changes, and whether it
    can change again."""

    token: str
    final: bool


def _digest(parts: list[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=10).hexdigest()


def run_state(world: World, run_id: str, since: str = "") -> LiveState:
    """The run page's state: its last event (every change of a run, step, hook or wait is
    an event), its child runs' statuses and its streams.

    The token starts with the last event id, so the next poll reads only the events
    after it (``since``, the token the page or the previous poll got), not the whole log.

    Raises:
        RunNotFoundError: no such run.
    """
    run = world.runs.get(run_id)
    cursor = since.split("~", 1)[0] if "~" in since else ""
    newer = world.events.list(run_id, after_event_id=cursor or None)
    last_event = newer[-1].event_id if newer else cursor
    children: dict[str, RunStatus | None] = {}
    for step in world.steps.list(run_id):
        if step.step_name == START_STEP_ID:
            child = child_run_id(step.step_id)
            try:
                children[child] = world.runs.get(child).status
            except RunNotFoundError:
                children[child] = None
    return _run_live_state(last_event, run.status, world.streams.list(run_id), children)


def view_state(view: RunView) -> LiveState:
    """The live state of what a run page was rendered from (``run_state``'s token for the
    view's own records).

    The view's reads are not one snapshot (the run's record is read before its log), so
    the page's live stream must start from what the page SHOWS, not from a fresh read: a
    run that ended between the reads then still gets a ``change`` (and the page its final
    state) instead of a stream that never starts because a fresh read says it is final.
    """
    last_event = view.events[-1].event_id if view.events else ""
    children: dict[str, RunStatus | None] = {}
    for step in view.steps:
        if step.step_name == START_STEP_ID:
            child = child_run_id(step.step_id)
            record = view.children.get(child)
            children[child] = None if record is None else record.status
    return _run_live_state(last_event, view.run.status, view.streams, children)


def _run_live_state(
    last_event: str,
    status: RunStatus,
    streams: list[str],
    children: dict[str, RunStatus | None],
) -> LiveState:
    parts = [status, *streams]
    for child in sorted(children):
        child_status = children[child]
        parts.append(f"{child}:{child_status or 'none'}")
    child_final = all(s is not None and s in RUN_TERMINAL for s in children.values())
    return LiveState(f"{last_event}~{_digest(parts)}", status in RUN_TERMINAL and child_final)


def runs_state(world: World, query: RunsQuery, since: str = "") -> LiveState:
    """The runs list's state: the ids, statuses and update times of its page (never final:
    new runs may arrive). One list query: what a live run waits on is refreshed with the
    page whenever a run on it changes, not polled per run."""
    runs, has_next = _page_of_runs(world, query)
    parts = [f"{r.run_id}:{r.status}:{r.updated_at.isoformat()}" for r in runs]
    return LiveState(_digest([*parts, str(has_next)]), final=False)


def stream_state(world: World, run_id: str, name: str, since: str = "") -> LiveState:
    """A stream page's state: its chunk count and whether it is closed."""
    page = world.streams.read(run_id, name, start_index=0, limit=None)
    return stream_view_state(page.next_index, page.closed)


def stream_view_state(chunk_count: int, closed: bool) -> LiveState:
    """The live state of a stream page that shows ``chunk_count`` chunks (``stream_state``'s
    token for them): taken from what the page shows, as ``view_state`` is, so a stream that
    grew or closed after its chunks were read still gets a ``change``."""
    return LiveState(_digest([str(chunk_count), str(closed)]), closed)
