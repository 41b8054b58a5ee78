"""Logs written by wfkit 0.1.0 (before the wfkit.* namespace) still replay and read back.

Each file in ``logs/`` is a finished run of ``app/goldenapp/flows.py`` recorded by a
released version (see README.md). Today's transform builds the same source, and the
pure replay (no world, no I/O) must reach the same end from the recorded log: the
same value for a completed run, the same error for a failed one. Every stored error
must come back as the class it was raised as, under its new module path.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import wfbuild
import wfkit
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.loader import load_build
from wfkit.runtime.replay.session import Completed, Failed, Suspended, replay
from wfkit.runtime.serialization import deserialize, deserialize_call, deserialize_error
from wfkit.worlds.base import Event, Run

HERE = Path(__file__).resolve().parent
LOGS = sorted((HERE / "logs").glob("*.json"))


@pytest.fixture(scope="module")
def golden_build(tmp_path_factory: pytest.TempPathFactory) -> None:
    project = tmp_path_factory.mktemp("golden") / "app"
    shutil.copytree(HERE / "app", project)
    out = project / ".wfkit" / "build"
    wfbuild.build(root=project, out=out)
    load_build(out, root=project)


def _by_value(value: Any) -> Any:
    """A value compared by content: the recorded Receipt is rebuilt from one module's
    class, the replayed one from another build mode of the same source."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _by_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__qualname__, fields)
    if isinstance(value, enum.Enum):
        return (type(value).__qualname__, value.value)
    if isinstance(value, dict):
        return {key: _by_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_by_value(item) for item in value)
    return value


def _load(path: Path) -> tuple[Run, list[Event], dict[str, Any]]:
    recorded = json.loads(path.read_text())
    run = Run.model_validate(recorded["run"])
    events = [Event.model_validate(e) for e in recorded["events"]]
    return run, events, recorded


RECORDED_BUGS = {
    "errors_cross": "0.1.0 rebuilt the step's OutOfStock as the step twin's class, so the "
    "workflow's `except OutOfStock` (the workflow twin's class) missed it and the run failed "
    "(issue 9, class identity). Today the workflow catches it and goes on to its next step.",
}
"""Logs whose recorded end was a bug since fixed: replay reaches the fixed behaviour."""


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_a_recorded_log_replays_to_its_recorded_end(path: Path, golden_build: None) -> None:
    run, events, recorded = _load(path)
    assert recorded["recorded_with"] == "0.1.0"
    terminal = events[-1]
    args, kwargs, _, _ = deserialize_call(run.input)
    outcome = replay(
        registry.get_workflow(run.workflow_name), run, events[:-1], args=args, kwargs=kwargs
    )
    if path.stem in RECORDED_BUGS:
        assert isinstance(outcome, Suspended), outcome
        (next_step,) = outcome.steps
        assert next_step.step_id == "step//./goldenapp/flows//refuse"
    elif terminal.event_type == "run_completed":
        assert isinstance(outcome, Completed), outcome
        assert _by_value(outcome.value) == _by_value(deserialize(terminal.data["output"]))
    else:
        assert terminal.event_type == "run_failed"
        assert isinstance(outcome, Failed) and outcome.code == terminal.data["error_code"]
        recorded_error = deserialize_error(terminal.data["error"])
        assert type(outcome.error) is type(recorded_error)
        assert str(outcome.error) == str(recorded_error)


def test_old_error_paths_rebuild_as_todays_classes(golden_build: None) -> None:
    _, events, _ = _load(HERE / "logs" / "fails.json")
    assert events[-1].data["error"]["value"]["cls"] == "runtime.errors:FatalError"  # as stored
    error = deserialize_error(events[-1].data["error"])
    assert type(error) is wfkit.FatalError and str(error) == "refused: o-2"

    _, events, _ = _load(HERE / "logs" / "order_flow.json")
    (retrying,) = [e for e in events if e.event_type == "step_retrying"]
    assert retrying.data["error"]["value"]["cls"] == "runtime.errors:RetryableError"
    retry = deserialize_error(retrying.data["error"])
    assert type(retry) is wfkit.RetryableError and str(retry) == "provider busy"


def test_every_stored_value_reads_back(golden_build: None) -> None:
    """No stored payload of any golden log fails to deserialize (no StepError fallbacks)."""
    for path in LOGS:
        _, events, _ = _load(path)
        for event in events:
            for key in ("input", "output", "result", "payload"):
                if key in event.data and event.data[key] is not None:
                    value = event.data[key]
                    if key == "input":
                        deserialize_call(value)
                    else:
                        deserialize(value)
            if "error" in event.data:
                error = deserialize_error(event.data["error"])
                assert not isinstance(error, wfkit.StepError), (path.stem, event.event_type)
