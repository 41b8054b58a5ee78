"""What ``wfkit deployments`` and ``wfkit inspect`` say about deployments.

``deployment_rows`` counts a world's runs per deployment and status, and says which
deployments this directory knows (the build ``wfkit worker`` would load here, the
kept copies under ``.wfkit/deployments``): during a rollout the old deployment's
in-flight count falls to 0 as its runs finish, and then its workers can stop.
``pending_reason`` says why a run has not started: no worker that serves its
deployment has taken it yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from wfkit.runtime.errors import InvalidBuildError
from wfkit.runtime.loading.deployments import deployment_id_of, kept_deployments
from wfkit.runtime.loading.project import find_build_dir
from wfkit.worlds.base import Run, RunStatus, World, utc_now

__all__ = [
    "LocalDeployments",
    "deployment_columns",
    "deployment_rows",
    "local_deployments",
    "pending_lines",
    "pending_reason",
]

IN_FLIGHT: tuple[RunStatus, ...] = ("pending", "running")
ENDED: tuple[RunStatus, ...] = ("completed", "failed", "cancelled")
UNPINNED = "(unpinned)"


@dataclass(frozen=True)
class LocalDeployments:
    """The deployments this directory knows.

    Attributes:
        current: the deployment of the build ``wfkit worker`` loads here (None: no build).
        current_build: that build's directory.
        kept: the kept deployments, oldest first, with their directories.
    """

    current: str | None
    current_build: Path | None
    kept: tuple[tuple[str, Path], ...]

    def where(self, deployment_id: str) -> str:
        """``current build``, ``kept`` or "" (not known here)."""
        if deployment_id and deployment_id == self.current:
            return "current build"
        if any(deployment_id == kept for kept, _path in self.kept):
            return "kept"
        return ""


def local_deployments(root: Path) -> LocalDeployments:
    """What this directory knows: its current build and ``root``'s kept deployments."""
    build_dir = find_build_dir(root)
    current = None
    if build_dir is not None and (build_dir / "manifest.json").is_file():
        try:
            current = deployment_id_of(build_dir)
        except (OSError, InvalidBuildError):
            current = None  # incomplete (mid-rebuild): not a deployment yet
    kept = tuple((k.deployment_id, k.path) for k in kept_deployments(root))
    return LocalDeployments(current, build_dir if current else None, kept)


def deployment_rows(
    world: World, local: LocalDeployments, *, count_ended: bool = False
) -> list[dict[str, object]]:
    """One row per deployment: runs per status, in flight, and whether it is known here.

    Deployments with runs come first, those with runs in flight before the others;
    deployments known here without any run follow. Unpinned runs (recorded by wfkit
    0.1.0, or started where no build was known) are one row, ``(unpinned)``.

    Args:
        world: the world whose runs are counted.
        local: what this directory knows (``local_deployments``).
        count_ended: also count completed, failed and cancelled runs (reads every run).
    """
    statuses = IN_FLIGHT + (ENDED if count_ended else ())
    counts: dict[str, Counter[str]] = {}
    for status in statuses:
        for run in world.runs.list(status=status, limit=1_000_000_000):
            counts.setdefault(run.deployment_id, Counter())[status] += 1
    known = [d for d in (local.current, *(k for k, _p in reversed(local.kept))) if d]
    for deployment_id in known:
        counts.setdefault(deployment_id, Counter())
    order = sorted(
        counts,
        key=lambda d: (
            -sum(counts[d][s] for s in IN_FLIGHT),
            d != local.current,
            known.index(d) if d in known else len(known),
            d == "",
            d,
        ),
    )
    rows: list[dict[str, object]] = []
    for deployment_id in order:
        row: dict[str, object] = {
            "deployment": deployment_id or UNPINNED,
            "here": local.where(deployment_id),
            "in_flight": sum(counts[deployment_id][s] for s in IN_FLIGHT),
        }
        row.update({status: counts[deployment_id][status] for status in statuses})
        rows.append(row)
    return rows


def deployment_columns(*, count_ended: bool) -> list[str]:
    """The columns of ``deployment_rows`` in table order."""
    return ["deployment", "here", "in_flight", *IN_FLIGHT, *(ENDED if count_ended else ())]


def pending_reason(run: Run, local: LocalDeployments, now: datetime | None = None) -> str | None:
    """Why ``run`` has not started (None unless it is pending).

    A pending run waits for a worker that serves its deployment to take its first
    message (the hint says whether this directory has that deployment's build), or,
    started on a named queue, for a worker to admit it.
    """
    if run.status != "pending":
        return None
    waited = _duration(((now or utc_now()) - run.created_at).total_seconds())
    if run.queue_name is not None:
        key = f" (key {run.queue_key!r})" if run.queue_key is not None else ""
        return (
            f"waiting in queue {run.queue_name!r}{key} for a worker that declares the queue "
            f"to admit it under its limits; pending for {waited}"
        )
    if not run.deployment_id:
        return (
            f"waiting for a worker (unpinned run: any worker that serves unpinned runs takes it "
            f"with its newest deployment); pending for {waited}"
        )
    where = local.where(run.deployment_id)
    if where:
        hint = f"its build is here ({where}): `wfkit worker` serves it"
    else:
        hint = (
            "no build of it is here: run `wfkit worker --build PATH` with its build, or move "
            f"its runs to newer code with `wfkit worker --adopt {run.deployment_id}`"
        )
    return (
        f"waiting for a worker that serves deployment {run.deployment_id}; pending for "
        f"{waited}; {hint}"
    )


def pending_lines(runs: Sequence[Run], local: LocalDeployments) -> list[str]:
    """``<run id>: <pending reason>`` for each pending run."""
    now = utc_now()
    lines = []
    for run in runs:
        reason = pending_reason(run, local, now)
        if reason is not None:
            lines.append(f"{run.run_id}: {reason}")
    return lines


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
