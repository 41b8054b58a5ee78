"""``wfkit verify``: re-fold event logs and compare them with the materialized records."""

from __future__ import annotations

from wfkit.worlds.base import World, diff_run_records

ALL_RUNS = 1_000_000


def verify_world(world: World, *, run_id: str | None = None) -> list[str]:
    """Differences between each run's records and a fresh fold of its log.

    Args:
        world: the world to check.
        run_id: one run, or None for every run.

    Returns:
        One line per difference, prefixed with the run id; empty when all match.
    """
    run_ids = [run_id] if run_id else [r.run_id for r in world.runs.list(limit=ALL_RUNS)]
    problems: list[str] = []
    for rid in run_ids:
        problems += [f"{rid}: {line}" for line in diff_run_records(world, rid)]
    return problems
