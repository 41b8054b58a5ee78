"""``wfkit start``, ``run``, ``cancel``, ``retry`` and ``export``: acting on runs."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfkit.cli.common import Subcommands, add_command, json_args, world_of

if TYPE_CHECKING:
    from wfkit.runtime.loading.manifest import ManifestEntry


UNKNOWN_WORKFLOW = 2
"""``wfkit start``'s exit status for a workflow no known build lists (nothing is written)."""
BAD_OPTION = 2
"""``wfkit start``'s exit status for an option it cannot read (argparse's usage error)."""


def cmd_start(args: argparse.Namespace) -> int:
    """Start a run; refuse a workflow the build does not list, before writing anything."""
    from wfkit.runtime.api.client import start
    from wfkit.runtime.errors import WorkflowNotRegisteredError
    from wfkit.runtime.loading.resolve import known_workflows, workflow_id_named

    try:
        deadline = deadline_arg(args.deadline)
    except ValueError as exc:
        print(f"wfkit start: {exc}", file=sys.stderr)
        return BAD_OPTION
    entries, builds = known_workflows()
    try:
        workflow_id = workflow_id_named(args.workflow)
    except WorkflowNotRegisteredError:
        workflow_id = None
    listed = workflow_id in {e.id for e in entries}
    # With no build known here an ID is taken on trust (its workers may be on other
    # machines); a named deployment is checked by start() against that deployment's build.
    if workflow_id is None or (builds and not listed and args.deployment == "latest"):
        print(f"wfkit start: {unknown_workflow(args.workflow, entries, builds)}", file=sys.stderr)
        return UNKNOWN_WORKFLOW

    async def main() -> str:
        run = await start(
            workflow_id,
            *json_args(args.args),
            run_id=args.run_id,
            world=world_of(args),
            deployment=args.deployment,
            idempotency_key=args.idempotency_key,
            deadline=deadline,
            queue=args.queue,
            key=args.key,
            priority=args.priority,
        )
        return run.run_id

    print(asyncio.run(main()))
    return 0


def deadline_arg(text: str | None) -> timedelta | datetime | None:
    """``--deadline``: a duration from now (``30m``, ``1h30m``, ``2d``, seconds) or an ISO
    8601 time with its offset (``2030-01-01T09:00:00+00:00``, ``…Z``).

    Raises:
        ValueError: neither, or a time without an offset (whose zone would be a guess).
    """
    from wfkit.runtime.api.workflow import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as not_a_duration:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"--deadline {not_a_duration}, or an ISO time such as 2030-01-01T09:00:00Z"
            ) from None
    if at.tzinfo is None:
        raise ValueError(
            f"--deadline {text!r} has no UTC offset: add one (Z, +02:00) so it is not a guess"
        )
    return at


def unknown_workflow(name: str, entries: Sequence[ManifestEntry], builds: Sequence[Path]) -> str:
    """One line: ``name`` is not a workflow the builds list, and the closest names that are
    (written the way ``name`` was: an ID or ``MODULE:FUNCTION``)."""
    as_ids = name.startswith("workflow//")
    by_tail: dict[str, list[str]] = {}
    for entry in entries:  # compare what tells workflows apart: the function, not the path
        by_tail.setdefault(entry.key, []).append(
            entry.id if as_ids else f"{entry.module}:{entry.key}"
        )
    tail = name.rsplit("//" if as_ids else ":", 1)[-1]
    close = [
        full
        for match in difflib.get_close_matches(tail, list(by_tail), n=3, cutoff=0.6)
        for full in by_tail[match]
    ][:3]
    where = ", ".join(str(b) for b in builds) or "no build was found"
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return (
        f"no workflow {name} in the build ({where}){hint} (`wfkit workflows` lists them; "
        "rebuild with `python -m wfbuild build` if it is new)"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Build if stale, run the workflow in-process to its end, print its result."""
    from wfkit import run as run_workflow
    from wfkit.cli.results import render_value

    fn = import_target(args.target)
    result = run_workflow(fn, *json_args(args.args))
    print(render_value(result))
    return 0


def import_target(target: str) -> Any:
    """The function ``MODULE:FUNCTION`` names, imported from the project (its root goes on
    ``sys.path``: a console script, unlike ``python -m``, does not put the cwd there).

    Raises:
        SystemExit: one line when the module or the function is not there.
    """
    import importlib

    from wfkit.runtime.loading.project import find_root

    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise SystemExit("wfkit run: expected MODULE:FUNCTION, e.g. examples.orders:process_order")
    root = find_root()
    if str(root) not in sys.path:  # the project's modules import from any of its subdirectories
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the module exists but imports something missing: its traceback helps
        raise SystemExit(
            f"wfkit run: no module named {missing!r} in the project at {root} "
            "(run from inside the project, or install it)"
        ) from None
    fn = getattr(module, attr.split(".")[0], None)
    for part in attr.split(".")[1:]:  # Class.method
        fn = getattr(fn, part, None)
    if fn is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise SystemExit(f"wfkit run: module {module_name} has no attribute {attr!r}{hint}")
    return fn


def cmd_cancel(args: argparse.Namespace) -> int:
    from wfkit.runtime.api.client import cancel_run_sync

    cancelled = cancel_run_sync(args.run_id, world=world_of(args))  # RunNotFoundError: exit 1
    print(f"cancelled {args.run_id}" if cancelled else f"{args.run_id} had already ended")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Run a failed run again on the current code (``wfkit.retry_run``)."""
    from wfkit.runtime.api.client import retry_run_sync
    from wfkit.worlds.base import EntityConflictError, RunNotFoundError

    try:
        retry_run_sync(args.run_id, world=world_of(args))
    except (RunNotFoundError, EntityConflictError) as exc:
        print(f"wfkit retry: {exc}", file=sys.stderr)
        return 1
    print(f"retrying {args.run_id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write runs' records and event logs as JSON, for ``python -m wfbuild check --replay``."""
    from wfkit.runtime.tools.replay_check import export_run
    from wfkit.worlds.base import RunNotFoundError

    world = world_of(args)
    try:
        logs = [export_run(world, run_id) for run_id in args.run_ids]
    except RunNotFoundError as exc:
        print(f"wfkit export: {exc}", file=sys.stderr)
        return 1
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
        for log in logs:
            path = folder / f"{log['run']['run_id']}.json"
            path.write_text(json.dumps(log, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            print(path)
        return 0
    print(json.dumps(logs[0] if len(logs) == 1 else logs, indent=1, sort_keys=True))
    return 0


def register(sub: Subcommands) -> None:
    """Add this module's subcommands to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "export",
        help="write runs' event logs as JSON (for `python -m wfbuild check --replay`)",
    )
    p.add_argument("run_ids", nargs="+", metavar="RUN", help="the runs to export (wrun_...)")
    p.add_argument(
        "--dir", default=None, help="write one RUN.json per run here (default: JSON on stdout)"
    )
    p.set_defaults(func=cmd_export)

    p = add_command(sub, "start", help="start a run; prints its id")
    p.add_argument(
        "workflow",
        help="workflow ID (workflow//./myapp/jobs//pipeline) or MODULE:FUNCTION "
        "(myapp.jobs:pipeline), looked up in the build's manifest",
    )
    p.add_argument("args", nargs="*", help="the workflow's arguments, each a JSON value")
    p.add_argument("--run-id", default=None, help="a run id of your choosing (default: a new one)")
    p.add_argument(
        "--deployment",
        default="latest",
        help="the deployment the run is pinned to: 'latest' (the newest build known here that "
        "lists the workflow) or an ID from `wfkit deployments` (default: latest)",
    )
    p.add_argument(
        "--idempotency-key",
        default=None,
        metavar="KEY",
        help="start the run once per KEY: a later start with the same KEY prints the first "
        "run's id and starts nothing (default: none, every start is a new run)",
    )
    p.add_argument(
        "--deadline",
        default=None,
        metavar="WHEN",
        help="fail the run with RUN_DEADLINE_EXCEEDED unless it ends by then: a duration "
        "from now (30m, 1h30m, 2d) or an ISO time with offset (2030-01-01T09:00:00Z) "
        "(default: none)",
    )
    p.add_argument(
        "--queue",
        default=None,
        metavar="NAME",
        help="the named queue (wfkit.Queue) the run waits in, pending, until a worker that "
        "declares it admits it under its limits (default: none, the run starts at once)",
    )
    p.add_argument(
        "--key",
        default=None,
        help="the run's key in its --queue, for per_key_concurrency (default: none)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=0,
        help="the run's priority in its --queue: lower is admitted first (default: 0)",
    )
    p.set_defaults(func=cmd_start)

    p = add_command(
        sub, "run", help="build, run a workflow to completion in-process, print its result"
    )
    p.add_argument(
        "target", help="the workflow as MODULE:FUNCTION (myapp.jobs:pipeline), from the project"
    )
    p.add_argument("args", nargs="*", help="the workflow's arguments, each a JSON value")
    p.set_defaults(func=cmd_run)

    p = add_command(sub, "cancel", help="cancel a run")
    p.add_argument("run_id", metavar="RUN", help="the run's id (wrun_...)")
    p.set_defaults(func=cmd_cancel)

    p = add_command(
        sub,
        "retry",
        help="run a failed run again on the current code, from its log",
        description=(
            "Record run_retried (failed -> running) and wake the run: a worker replays its "
            "log past the failure on the build it runs now (e.g. code fixed with "
            "wfkit.patched() after a REPLAY_DIVERGENCE). Sleeps the failure cut short wait "
            "again; hooks the failure disposed are not revived (resuming them is refused). "
            "Only a failed run can be retried."
        ),
    )
    p.add_argument("run_id", metavar="RUN", help="the failed run's id (wrun_...)")
    p.set_defaults(func=cmd_retry)
