"""Replay recorded run logs against the current build, with no side effects.

``wfkit export RUN...`` writes runs' logs as JSON; ``python -m wfbuild check --replay
SOURCE`` replays each against the code as it is now and reports every run whose log
the code no longer matches, at the user's line::

    myapp/jobs.py:14: replay divergence in workflow pipeline (run wrun_…): the code
    changed since the run started: the log records step charge('o-1') here, the code
    now calls step refund('o-1')

It is the CI gate for code changes under long-lived runs (Temporal's ``Replayer`` is
the anchor). The replay is the pure one workers use (``replay.session.replay``): no
world, no queue, no step runs, nothing written. A finished run is replayed up to its
terminal event; a run still in flight to the end of its log (the code going past the
log is fine: that is where the run will continue).

Sources: a JSON file written by ``export_run`` (or a list of them), a directory of
such files, or a world spec (``sqlite:///…``, ``postgresql://…``, ``local``), whose
runs are all checked.

Alternatives rejected: comparing generated code between builds (a change that
reorders nothing, such as a renamed local, would fail the check, and a change inside
a step body is harmless to replay); replaying in a worker against a copy of the
database (needs the database in CI, and runs steps).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from wfkit.runtime.context import current_mode
from wfkit.runtime.errors import SerializationError, WorkflowNotRegisteredError
from wfkit.runtime.loading import registry
from wfkit.runtime.replay.session import Completed, Failed, Suspended, replay
from wfkit.runtime.serialization import deserialize_call
from wfkit.worlds.base import RUN_TERMINAL, Event, Run, World

__all__ = [
    "EXPORT_FORMAT",
    "RecordedRun",
    "ReplayVerdict",
    "check_recorded_runs",
    "check_run",
    "export_run",
    "read_recorded_runs",
    "run_replay_check",
]

EXPORT_FORMAT = "wfkit-run-log/1"
"""The ``format`` field of an exported run log."""

Verdict = Literal["ok", "diverged", "unknown_workflow", "unreadable"]
_DIVERGENCE_CODES = frozenset({"REPLAY_DIVERGENCE", "CORRUPTED_EVENT_LOG"})


@dataclass(frozen=True)
class RecordedRun:
    """One run's record and event log, and where it was read from."""

    run: Run
    events: list[Event]
    source: str


@dataclass(frozen=True)
class ReplayVerdict:
    """What replaying one recorded run against the current build found."""

    run_id: str
    workflow_id: str
    verdict: Verdict
    message: str
    """Empty for ``ok``; else the report line (a divergence names the user's line)."""

    @property
    def passed(self) -> bool:
        return self.verdict == "ok"


def export_run(world: World, run_id: str) -> dict[str, Any]:
    """A run's record and whole event log as JSON-ready data (``wfkit export``).

    Raises:
        RunNotFoundError: no such run.
    """
    run = world.runs.get(run_id)
    events = world.events.list(run_id)
    try:
        wfkit_version = version("wfkit")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        wfkit_version = "unknown"
    return {
        "format": EXPORT_FORMAT,
        "recorded_with": wfkit_version,
        "run": run.model_dump(mode="json"),
        "events": [event.model_dump(mode="json") for event in events],
    }


def _from_json(data: Any, source: str) -> RecordedRun:
    if not isinstance(data, dict) or "run" not in data or "events" not in data:
        raise ValueError(f"{source}: not a wfkit run log (written by `wfkit export`)")
    fmt = data.get("format", EXPORT_FORMAT)
    if fmt != EXPORT_FORMAT:
        raise ValueError(f"{source}: unknown run log format {fmt!r} (expected {EXPORT_FORMAT})")
    run = Run.model_validate(data["run"])
    events = [Event.model_validate(event) for event in data["events"]]
    return RecordedRun(run=run, events=events, source=source)


def read_recorded_runs(source: str | Path, *, world: World | None = None) -> Iterator[RecordedRun]:
    """The recorded runs a ``--replay`` source names.

    Args:
        source: a JSON file (one exported run, or a list of them) or a directory of
            ``*.json`` files; ignored when ``world`` is given.
        world: read every run of this world instead.

    Raises:
        ValueError: a file is not an exported run log (its path says which).
        FileNotFoundError: the path does not exist.
    """
    if world is not None:
        for run in _all_runs(world):
            yield RecordedRun(run=run, events=world.events.list(run.run_id), source="world")
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{file}: not JSON ({exc})") from None
        for item in data if isinstance(data, list) else [data]:
            yield _from_json(item, str(file))


def _all_runs(world: World) -> list[Run]:
    # The Runs protocol has no cursor yet; a replay check reads a CI-sized world.
    return world.runs.list(limit=1_000_000)


def check_run(recorded: RecordedRun) -> ReplayVerdict:
    """Replay one recorded run against the workflows registered in this process."""
    run = recorded.run
    events = recorded.events
    if events and events[-1].event_type in RUN_TERMINAL:
        events = events[:-1]  # the terminal event is the orchestrator's, not the code's
    verdict = _verdict_for(run, "ok", "")
    try:
        workflow_fn = registry.get_workflow(run.workflow_name)
    except WorkflowNotRegisteredError:
        return _verdict_for(
            run, "unknown_workflow",
            f"workflow {run.workflow_name} (run {run.run_id}) is not in this build",
        )  # fmt: skip
    token = current_mode.set("workflow")
    try:
        args, kwargs, _closure, _this = deserialize_call(run.input or {})
    except SerializationError as exc:
        return _verdict_for(run, "unreadable", f"run {run.run_id}: its input cannot be read: {exc}")
    finally:
        current_mode.reset(token)
    outcome = replay(workflow_fn, run, events, args=tuple(args), kwargs=dict(kwargs))
    if isinstance(outcome, Failed) and outcome.code in _DIVERGENCE_CODES:
        return _verdict_for(run, "diverged", str(outcome.error))
    assert isinstance(outcome, Completed | Failed | Suspended)
    return verdict


def _verdict_for(run: Run, verdict: Verdict, message: str) -> ReplayVerdict:
    return ReplayVerdict(run.run_id, run.workflow_name, verdict, message)


def check_recorded_runs(runs: Iterable[RecordedRun]) -> list[ReplayVerdict]:
    """``check_run`` for each run, in order."""
    return [check_run(recorded) for recorded in runs]


def _is_world_spec(source: str) -> bool:
    return "://" in source or source in ("local", "memory")


def run_replay_check(sources: Iterable[str], *, build_dir: Path, root: Path) -> int:
    """``python -m wfbuild check --replay``: load the build, replay, print, return the exit code.

    Prints one line per diverged or unreplayable run (the divergence names the
    user's line) and a summary. Returns 0 when every run replays, 1 when any does
    not, 2 when a source cannot be read.
    """
    import sys

    from wfkit.runtime.loading.loader import load_build
    from wfkit.runtime.world_config import resolve_world

    load_build(build_dir, root=root)
    verdicts: list[ReplayVerdict] = []
    for source in sources:
        try:
            world = resolve_world(source) if _is_world_spec(source) else None
            verdicts += check_recorded_runs(read_recorded_runs(source, world=world))
        except (OSError, ValueError) as exc:
            print(f"wfbuild: error: --replay {source}: {exc}", file=sys.stderr)
            return 2
    failed = [v for v in verdicts if not v.passed]
    for verdict in failed:
        print(verdict.message, file=sys.stderr)
    print(
        f"wfbuild: replayed {len(verdicts)} run(s) against the build: "
        f"{len(verdicts) - len(failed)} ok, {len(failed)} diverged or not replayable"
    )
    return 1 if failed else 0
