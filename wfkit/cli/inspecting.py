"""``wfkit inspect``, ``verify`` and ``heal``: reading (and repairing) a world."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from wfkit.cli.common import Subcommands, add_command, world_of
from wfkit.runtime.serialization.at_rest import reveal
from wfkit.runtime.tools import tables as views

INSPECT_KINDS = ("runs", "steps", "events", "hooks", "waits", "streams")
"""What ``wfkit inspect`` lists (each also by its singular)."""

RUN_COLUMNS = ["run_id", "workflow", "status", "deployment", "created", "completed"]


def _run_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    rows = views.run_rows(runs)
    for row, run in zip(rows, runs, strict=True):
        row["deployment"] = run.deployment_id or "(unpinned)"
    return rows


def _inspect_runs(args: argparse.Namespace, world: Any) -> int:
    """``inspect runs`` / ``inspect run ID``: the table, and why pending runs wait."""
    from wfkit.runtime.loading.project import find_root
    from wfkit.runtime.tools import deployments

    local = deployments.local_deployments(find_root())
    runs = [world.runs.get(args.id)] if args.id else world.runs.list(limit=args.limit)
    if args.json:
        dumped = []
        for run in runs:
            record = reveal(run.model_dump(mode="json"))
            record["pending_reason"] = deployments.pending_reason(run, local)
            dumped.append(record)
        print(json.dumps(dumped[0] if args.id else dumped, indent=2, default=str))
        return 0
    print(views.format_table(_run_rows(runs), RUN_COLUMNS))
    waiting = deployments.pending_lines(runs, local)
    if waiting:
        print()
        print("\n".join(waiting))
    if args.id:
        print()
        print(views.timeline(world, args.id))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    world = world_of(args)
    kind, ident = args.kind, args.id
    rows: list[dict[str, Any]]
    records: list[Any]
    if kind in ("run", "runs"):
        return _inspect_runs(args, world)
    if ident is not None and kind.removesuffix("s") + "s" in INSPECT_KINDS:
        world.runs.get(ident)  # an unknown run is an error (exit 1), not an empty table
    if kind in ("step", "steps"):
        records = world.steps.list(_need(ident, kind))
        rows, columns = (
            views.step_rows(records),
            ["step_id", "step", "status", "attempt", "started", "completed", "error"],
        )
    elif kind in ("event", "events"):
        events = views.read_events(world, _need(ident, kind))  # a corrupted row in its place
        if not args.json:
            print(views.format_timeline(events))
            return 0
        dumped = [
            e.as_json() if isinstance(e, views.CorruptedEvent) else e.model_dump(mode="json")
            for e in events
        ]
        print(json.dumps(dumped, indent=2, default=str))
        return 0
    elif kind in ("hook", "hooks"):
        records = world.hooks.list(run_id=ident)
        rows, columns = (
            views.hook_rows(records),
            ["hook_id", "run_id", "token", "status", "webhook", "created"],
        )
    elif kind in ("wait", "waits"):
        records = world.waits.list(_need(ident, kind))
        rows, columns = (
            views.wait_rows(records),
            ["wait_id", "run_id", "status", "resume_at", "completed"],
        )
    elif kind in ("stream", "streams"):
        names = world.streams.list(_need(ident, kind))
        records = []
        rows, columns = [{"stream": n} for n in names], ["stream"]
    else:
        raise SystemExit(f"wfkit inspect: unknown resource {kind!r}: {', '.join(INSPECT_KINDS)}")
    if args.json:
        print(
            json.dumps(
                [reveal(r.model_dump(mode="json")) for r in records] if records else rows,
                indent=2,
                default=str,
            )
        )
    else:
        print(views.format_table(rows, columns))
    return 0


def _need(ident: str | None, kind: str) -> str:
    if not ident:
        raise SystemExit(f"wfkit inspect {kind}: give a run id")
    return ident


def cmd_verify(args: argparse.Namespace) -> int:
    from wfkit.runtime.tools.verify import verify_world

    world = world_of(args)
    if args.run_id:
        world.runs.get(args.run_id)  # RunNotFoundError: exit 1, not "every record equals"
    problems = verify_world(world, run_id=args.run_id)
    for line in problems:
        print(line)
    if problems:
        print(
            f"verify: {len(problems)} difference(s) between records and event logs", file=sys.stderr
        )
        return 1
    print("verify: every materialized record equals a fresh fold of its event log")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from wfkit.runtime.engine.worker import heal

    count = heal(world_of(args))
    print(f"heal: re-enqueued {count} run(s) that had no live queue message")
    return 0


def register(sub: Subcommands) -> None:
    """Add this module's subcommands to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "inspect",
        help=f"tables of {', '.join(INSPECT_KINDS)}",
        description=f"Print a table (or --json) of one kind of record: {', '.join(INSPECT_KINDS)}. "
        "`inspect runs RUN` also shows why a pending run waits and the run's timeline; "
        "`inspect events RUN` prints its event log as a timeline.",
    )
    p.add_argument("kind", metavar="KIND", help=f"what to list: {', '.join(INSPECT_KINDS)}")
    p.add_argument(
        "id",
        nargs="?",
        default=None,
        metavar="RUN",
        help="the run (required for steps, events, waits and streams; hooks: that run's)",
    )
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.add_argument("--limit", type=int, default=50, help="runs: at most this many, newest first")
    p.set_defaults(func=cmd_inspect)

    p = add_command(sub, "verify", help="re-fold every event log and compare with the records")
    p.add_argument(
        "run_id", nargs="?", default=None, metavar="RUN", help="only this run (default: every run)"
    )
    p.set_defaults(func=cmd_verify)

    p = add_command(sub, "heal", help="re-enqueue runs that lost their queue message")
    p.set_defaults(func=cmd_heal)
