"""Assertions on a run's event log and replay checks against golden logs.

A failure says what happened, not only that it differs: ``assert_steps`` shows the
steps the run called and its whole timeline; ``assert_replays`` shows each
divergence at the user's line, as ``python -m wfbuild check --replay`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from wfkit.runtime.tools.replay_check import (
    check_recorded_runs,
    export_run,
    read_recorded_runs,
)
from wfkit.runtime.tools.tables import timeline
from wfkit.worlds.base import World

__all__ = ["assert_replays", "assert_steps", "export_golden", "step_names"]


def short_step_name(step_id: str) -> str:
    """``step//./shop/orders//charge`` -> ``charge`` (the qualname; nested ``outer/inner``)."""
    return step_id.rsplit("//", 1)[-1]


def step_names(world: World, run_id: str, *, full_ids: bool = False) -> list[str]:
    """The steps a run called, in the order its log created them.

    Args:
        world: the run's world.
        run_id: the run.
        full_ids: give step IDs (``step//./path//name``) instead of qualnames.
    """
    names = []
    for event in world.events.list(run_id):
        if event.event_type == "step_created":
            step_id = str(event.data.get("step_name", "?"))
            names.append(step_id if full_ids else short_step_name(step_id))
    return names


def assert_steps(world: World, run_id: str, expected: Sequence[str]) -> None:
    """Assert that the run called exactly ``expected`` steps, in that order.

    Args:
        world: the run's world.
        run_id: the run.
        expected: step qualnames (``"charge"``, ``"Cart.total"``, ``"outer/inner"``) or
            full step IDs; the two may be mixed.

    Raises:
        AssertionError: the sequence differs; the message shows both sequences, the
            first difference and the run's timeline.
    """
    ids = step_names(world, run_id, full_ids=True)
    actual = [i if "//" in want else short_step_name(i) for i, want in _pad(ids, expected)]
    if actual == list(expected):
        return
    first = next(
        (n for n, (a, e) in enumerate(zip(actual, expected, strict=False)) if a != e),
        min(len(actual), len(expected)),
    )
    got = actual[first] if first < len(actual) else "(no more steps)"
    want = expected[first] if first < len(expected) else "(no more steps)"
    raise AssertionError(
        f"run {run_id} called steps {actual}, expected {list(expected)}; "
        f"first difference at #{first + 1}: {got!r} instead of {want!r}\n"
        f"timeline:\n{timeline(world, run_id)}"
    )


def _pad(ids: list[str], expected: Sequence[str]) -> list[tuple[str, str]]:
    """Pair each step id with the expected entry at its position ("" past the end)."""
    return [(i, expected[n] if n < len(expected) else "") for n, i in enumerate(ids)]


def export_golden(world: World, run_id: str, path: str | Path) -> Path:
    """Write a run's log as ``wfkit export`` does (a golden log for ``assert_replays``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(export_run(world, run_id), indent=2, sort_keys=True) + "\n")
    return target


def assert_replays(source: str | Path) -> None:
    """Assert that recorded run logs still replay against the loaded build.

    Args:
        source: a log written by ``wfkit export`` (one run or a list), or a directory
            of them.

    Raises:
        AssertionError: a run diverges (the message names the workflow, the user's
            line, the recorded and the new call), its workflow is not in the build,
            its input cannot be read, or the source holds no run.
        ValueError: a file is not a wfkit run log.
        FileNotFoundError: ``source`` does not exist.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such golden log")
    verdicts = check_recorded_runs(read_recorded_runs(path))
    if not verdicts:
        raise AssertionError(f"{source}: holds no recorded run")
    failed = [v.message for v in verdicts if not v.passed]
    if failed:
        raise AssertionError("\n".join(failed))
