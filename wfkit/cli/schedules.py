"""``wfkit schedules``: list cron schedules (with their next fire time), pause,
resume or remove one."""

from __future__ import annotations

import argparse
import json

from wfkit.cli.common import Subcommands, add_command, world_of

__all__ = ["cmd_schedules", "register"]


def register(sub: Subcommands) -> None:
    """Add this module's subcommands to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "schedules",
        help="list cron schedules (next fire time); pause, resume or remove one",
        description="With no action: a table of schedules. Schedules are created in code "
        "with wfkit.schedule(workflow, cron=..., args=..., id=...).",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "pause", "resume", "remove"],
        default="list",
        help="what to do (default: list)",
    )
    p.add_argument("schedule_id", nargs="?", default=None, metavar="ID", help="the schedule")
    p.add_argument("--json", action="store_true", help="list as JSON (default: a table)")
    p.set_defaults(func=cmd_schedules)


def cmd_schedules(args: argparse.Namespace) -> int:
    """Run ``wfkit schedules``; returns the exit code."""
    from wfkit.runtime.flow.schedules import next_fire_time
    from wfkit.runtime.tools.tables import format_table, short_name
    from wfkit.worlds.base import ScheduleNotFoundError, ScheduleStatus

    world = world_of(args)
    if args.action == "list":
        if args.schedule_id is not None:
            raise ValueError("`wfkit schedules list` takes no ID")
        rows = [
            {
                "id": item.schedule_id,
                "workflow": short_name(item.workflow_name),
                "cron": item.cron,
                "status": item.status,
                "missed": item.missed,
                "last_tick": item.last_tick_at,
                "next_fire": next_fire_time(item),
            }
            for item in world.schedules.list()
        ]
        if args.json:
            print(json.dumps(rows, default=str, indent=2))
        else:
            columns = ["id", "workflow", "cron", "status", "missed", "last_tick", "next_fire"]
            print(format_table(rows, columns))
        return 0
    if args.schedule_id is None:
        raise ValueError(f"`wfkit schedules {args.action}` needs a schedule ID")
    try:
        if args.action == "remove":
            world.schedules.delete(args.schedule_id)
            print(f"schedules: removed {args.schedule_id}")
        else:
            status: ScheduleStatus = "paused" if args.action == "pause" else "active"
            world.schedules.set_status(args.schedule_id, status)
            print(f"schedules: {args.schedule_id} is {status}")
    except ScheduleNotFoundError:
        raise ScheduleNotFoundError(
            f"no schedule {args.schedule_id!r} (`wfkit schedules` lists them)"
        ) from None
    return 0
