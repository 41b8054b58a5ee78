"""OpenTelemetry metrics: steps, runs, replay time, queue depth.

| instrument | kind | unit | attributes |
|---|---|---|---|
| ``wfkit.steps.completed`` | counter | ``{attempt}`` | ``wfkit.step.name`` |
| ``wfkit.steps.failed`` | counter | ``{attempt}`` | ``wfkit.step.name`` |
| ``wfkit.steps.retried`` | counter | ``{attempt}`` | ``wfkit.step.name`` |
| ``wfkit.step.duration`` | histogram | ``s`` | ``wfkit.step.name``, ``wfkit.step.outcome`` |
| ``wfkit.runs.completed`` | counter | ``{run}`` | ``wfkit.workflow.name`` |
| ``wfkit.runs.failed`` | counter | ``{run}`` | ``wfkit.workflow.name``, ``wfkit.error.code`` |
| ``wfkit.replay.duration`` | histogram | ``s`` | ``wfkit.workflow.name``, ``wfkit.replay`` (``full`` / ``catch_up``) |
| ``wfkit.queue.depth`` | gauge | ``{run}`` | ``wfkit.world`` |

A step attempt counts once, in the process that ran it: ``failed`` means it
failed for good (``FatalError``, or out of retries), ``retried`` that it failed
and will run again. ``wfkit.replay.duration`` is the time spent feeding a replay
session (a whole log after a restart or eviction, or the events a cached session
had not seen), not the database reads. ``wfkit.queue.depth`` is the number of
runs with queue messages not yet acked (waiting or being handled) in each world a
running worker serves, read when the metric reader collects (the world's
``live_run_ids``), never on the worker's hot path.

With no ``MeterProvider`` configured (``otel.meter()`` is None) each function
here returns at once.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from wfkit.runtime.observability.otel import meter
from wfkit.worlds.base import World

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation

__all__ = [
    "Instruments",
    "ReplayTimer",
    "instruments",
    "record_run_ended",
    "serve_queue_depth",
    "stop_serving_queue_depth",
    "timing_replay",
]

log = logging.getLogger("wfkit.observability")


@dataclass(frozen=True)
class Instruments:
    """wfkit's instruments on one meter."""

    steps_completed: Counter
    steps_failed: Counter
    steps_retried: Counter
    step_duration: Histogram
    runs_completed: Counter
    runs_failed: Counter
    replay_duration: Histogram


_instruments_cache: tuple[object, Instruments | None] = (None, None)


def instruments() -> Instruments | None:
    """The instruments on the configured meter (made once per meter), or None."""
    global _instruments_cache
    current = meter()
    if current is None:
        return None
    cached_meter, cached = _instruments_cache
    if current is cached_meter:
        return cached
    made = _create_instruments(current)
    _instruments_cache = (current, made)
    return made


def _create_instruments(on: Meter) -> Instruments:
    made = Instruments(
        steps_completed=on.create_counter(
            "wfkit.steps.completed", unit="{attempt}", description="Step attempts that succeeded."
        ),
        steps_failed=on.create_counter(
            "wfkit.steps.failed",
            unit="{attempt}",
            description="Step attempts that failed for good (FatalError or out of retries).",
        ),
        steps_retried=on.create_counter(
            "wfkit.steps.retried",
            unit="{attempt}",
            description="Step attempts that failed and are retried.",
        ),
        step_duration=on.create_histogram(
            "wfkit.step.duration", unit="s", description="How long one step attempt ran."
        ),
        runs_completed=on.create_counter(
            "wfkit.runs.completed", unit="{run}", description="Runs that completed."
        ),
        runs_failed=on.create_counter(
            "wfkit.runs.failed", unit="{run}", description="Runs that failed."
        ),
        replay_duration=on.create_histogram(
            "wfkit.replay.duration",
            unit="s",
            description="Time spent replaying a run's log (a full replay, or catching up).",
        ),
    )
    on.create_observable_gauge(
        "wfkit.queue.depth",
        callbacks=[_observe_queue_depth],
        unit="{run}",
        description="Runs with queue messages not yet acked, per world a running worker serves.",
    )
    return made


def record_run_ended(workflow_name: str, *, error_code: str | None) -> None:
    """Count a run this worker ended: completed, or failed with ``error_code``."""
    made = instruments()
    if made is None:
        return
    if error_code is None:
        made.runs_completed.add(1, {"wfkit.workflow.name": workflow_name})
    else:
        made.runs_failed.add(
            1, {"wfkit.workflow.name": workflow_name, "wfkit.error.code": error_code}
        )


class ReplayTimer:
    """``with timing_replay(...):`` around feeding a replay session; records
    ``wfkit.replay.duration`` (the base class records nothing)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


class _RecordingReplayTimer(ReplayTimer):
    def __init__(self, histogram: Histogram, attributes: dict[str, str]) -> None:
        self._histogram = histogram
        self._attributes = attributes
        self._began = 0.0

    def __enter__(self) -> None:
        self._began = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self._histogram.record(time.perf_counter() - self._began, self._attributes)


_NOT_TIMING = ReplayTimer()


def timing_replay(workflow_name: str, kind: Literal["full", "catch_up"]) -> ReplayTimer:
    """Time the replay of a run of ``workflow_name``: a ``full`` replay of its log, or a
    cached session's ``catch_up`` with events it had not seen."""
    made = instruments()
    if made is None:
        return _NOT_TIMING
    return _RecordingReplayTimer(
        made.replay_duration, {"wfkit.workflow.name": workflow_name, "wfkit.replay": kind}
    )


# --- queue depth -------------------------------------------------------------------------

# Worlds served by running workers; weak, so a world nobody uses any more is not kept
# alive (nor read) by the gauge.
_served_worlds: weakref.WeakValueDictionary[int, World] = weakref.WeakValueDictionary()
_serving_workers: dict[int, int] = {}


def serve_queue_depth(world: World) -> None:
    """Report ``world``'s queue depth while a worker serves it (call once per worker run)."""
    key = id(world)
    _served_worlds[key] = world
    _serving_workers[key] = _serving_workers.get(key, 0) + 1


def stop_serving_queue_depth(world: World) -> None:
    """The worker that called ``serve_queue_depth(world)`` stopped."""
    key = id(world)
    left = _serving_workers.get(key, 0) - 1
    if left > 0:
        _serving_workers[key] = left
        return
    _serving_workers.pop(key, None)
    _served_worlds.pop(key, None)


def _observe_queue_depth(_options: CallbackOptions) -> Iterable[Observation]:
    from opentelemetry.metrics import Observation

    observations = []
    for world in list(_served_worlds.values()):
        try:
            depth = len(world.queue.live_run_ids())
        except Exception as exc:  # a closed or unreachable world must not break collection
            log.debug("queue depth of world %s not read: %s", world.name, exc)
            continue
        observations.append(Observation(depth, {"wfkit.world": world.name}))
    return observations
