"""The ``wfkit`` command: run workers, start and inspect runs, verify and heal a world."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wfkit.runtime.tools import tables as views


def _world(args: argparse.Namespace) -> Any:
    from wfkit.runtime.world_config import get_world

    return get_world(args.world)


def _json_args(values: Sequence[str]) -> list[Any]:
    parsed = []
    for value in values:
        try:
            parsed.append(json.loads(value))
        except json.JSONDecodeError as exc:
            raise SystemExit(
                f"wfkit: argument {value!r} is not JSON ({exc.msg}); quote strings: '\"text\"'"
            ) from None
    return parsed


def cmd_worker(args: argparse.Namespace) -> int:
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.loading.loader import load_build
    from wfkit.runtime.loading.project import find_root
    from wfkit.runtime.observability.logs import configure_logging

    configure_logging("DEBUG" if args.verbose else args.log_level, log_format=args.log_format)
    builds = args.build or [load_build().build_dir]
    worker = Worker(
        world=_world(args),
        builds=builds,
        serve_unpinned=args.unpinned,
        kept_root=find_root() if args.kept else None,
        adopt=args.adopt or (),
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
        sweep_interval=args.sweep_interval,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        banner = (
            f"wfkit worker: world={worker.world.name} concurrency={args.concurrency} "
            f"deployments={_served(worker.serving.deployment_ids())}"
        )
        if args.log_format == "json":  # every line of a JSON log is JSON
            logging.getLogger("wfkit.worker").info(banner)
        else:
            print(banner, flush=True)
        await worker.run(stop_event=stop)

    asyncio.run(main())
    return 0


def _served(deployment_ids: Sequence[str]) -> str:
    """``d_a (newest), d_b`` for the worker's banner."""
    if not deployment_ids:
        return "none yet"
    newest, *older = deployment_ids
    return ", ".join([f"{newest} (newest)", *older])


def cmd_start(args: argparse.Namespace) -> int:
    from wfkit.runtime.api.client import start
    from wfkit.runtime.loading.resolve import workflow_id_named

    workflow_id = workflow_id_named(args.workflow)

    async def main() -> str:
        run = await start(
            workflow_id,
            *_json_args(args.args),
            run_id=args.run_id,
            world=_world(args),
            deployment=args.deployment,
        )
        return run.run_id

    print(asyncio.run(main()))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import importlib

    from wfkit import run as run_workflow
    from wfkit.runtime.loading.project import find_root

    module_name, _, attr = args.target.partition(":")
    if not attr:
        raise SystemExit("wfkit run: expected MODULE:FUNCTION, e.g. examples.orders:process_order")
    root = str(find_root())
    if root not in sys.path:  # the project's modules import from any of its subdirectories
        sys.path.insert(0, root)
    fn = getattr(importlib.import_module(module_name), attr)
    result = run_workflow(fn, *_json_args(args.args))
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from wfkit.runtime.api.client import get_run

    async def main() -> None:
        await (await get_run(args.run_id, world=_world(args))).cancel()

    asyncio.run(main())
    print(f"cancelled {args.run_id}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Run a failed run again on the current code (``wfkit.retry_run``)."""
    from wfkit.runtime.api.client import retry_run
    from wfkit.worlds.base import EntityConflictError, RunNotFoundError

    try:
        retry_run(args.run_id, world=_world(args))
    except (RunNotFoundError, EntityConflictError) as exc:
        print(f"wfkit: {exc}", file=sys.stderr)
        return 1
    print(f"retrying {args.run_id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write runs' records and event logs as JSON, for ``python -m wfbuild check --replay``."""
    from wfkit.runtime.tools.replay_check import export_run
    from wfkit.worlds.base import RunNotFoundError

    world = _world(args)
    try:
        logs = [export_run(world, run_id) for run_id in args.run_ids]
    except RunNotFoundError as exc:
        print(f"wfkit: {exc}", file=sys.stderr)
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
            record = run.model_dump(mode="json")
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
    world = _world(args)
    kind, ident = args.kind, args.id
    rows: list[dict[str, Any]]
    records: list[Any]
    if kind in ("run", "runs"):
        return _inspect_runs(args, world)
    elif kind in ("step", "steps"):
        records = world.steps.list(_need(ident, kind))
        rows, columns = (
            views.step_rows(records),
            ["step_id", "step", "status", "attempt", "started", "completed", "error"],
        )
    elif kind in ("event", "events"):
        records = world.events.list(_need(ident, kind))
        if not args.json:
            print(views.format_timeline(records))
            return 0
        rows, columns = views.event_rows(records), ["event_id", "type", "correlation_id", "created"]
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
        raise SystemExit(
            f"wfkit inspect: unknown resource {kind!r}: runs, steps, events, hooks, waits, streams"
        )
    if args.json:
        print(
            json.dumps(
                [r.model_dump(mode="json") for r in records] if records else rows,
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

    problems = verify_world(_world(args), run_id=args.run_id)
    for line in problems:
        print(line)
    if problems:
        print(
            f"verify: {len(problems)} difference(s) between records and event logs", file=sys.stderr
        )
        return 1
    print("verify: every materialized record equals a fresh fold of its event log")
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    """List deployments with their runs per status; ``--prune`` drops kept copies that
    no run in flight needs."""
    from wfkit.runtime.loading.deployments import kept_deployments, remove_kept
    from wfkit.runtime.loading.project import find_root
    from wfkit.runtime.tools import deployments

    world = _world(args)
    root = find_root()
    local = deployments.local_deployments(root)
    rows = deployments.deployment_rows(world, local, count_ended=args.all)
    if args.prune:
        in_flight = {str(r["deployment"]) for r in rows if r["in_flight"]}
        for kept in kept_deployments(root):
            if kept.deployment_id not in in_flight and kept.deployment_id != local.current:
                remove_kept(kept)
                print(f"pruned kept deployment {kept.deployment_id} (no run in flight)")
        local = deployments.local_deployments(root)
        rows = deployments.deployment_rows(world, local, count_ended=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(views.format_table(rows, deployments.deployment_columns(count_ended=args.all)))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Keep a copy of a build under ``.wfkit/deployments/<id>/`` (workers serve it while
    it has runs in flight, after the build itself is replaced)."""
    from wfkit.runtime.loading.deployments import keep_deployment
    from wfkit.runtime.loading.project import find_build_dir, find_root

    build_dir = Path(args.build).resolve() if args.build else find_build_dir()
    if build_dir is None or not (build_dir / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no wfkit build at {build_dir or find_root() / '.wfkit' / 'build'}: run "
            "`python -m wfbuild build` first (or give --build PATH)"
        )
    kept = keep_deployment(build_dir, find_root())
    print(f"kept deployment {kept.deployment_id} at {kept.path}")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from wfkit.runtime.engine.worker import heal

    count = heal(_world(args))
    print(f"heal: re-enqueued {count} run(s) that had no live queue message")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from wfkit.runtime.loading.loader import load_build
    from wfkit.runtime.tools.http import create_app

    load_build(args.build)
    world = _world(args)
    app = create_app(world)
    if not args.worker:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return 0
    from wfkit.runtime.engine.worker import Worker

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port))
        stop = asyncio.Event()
        worker_task = asyncio.create_task(Worker(world=world).run(stop_event=stop))
        try:
            await server.serve()
        finally:
            stop.set()
            await worker_task

    asyncio.run(main())
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the run inspector (``runtime/web.py``); it reads the world, loads no build."""
    import threading
    import webbrowser

    import uvicorn

    from wfkit.runtime.tools.web import create_web_app

    app = create_web_app(_world(args))
    url = f"http://{args.host}:{args.port}/"
    print(f"wfkit web: inspecting world={args.world or 'default'} at {url}", flush=True)
    if not args.no_browser:
        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _newest_mtime(directory: Path) -> float:
    stamps = [p.stat().st_mtime for p in directory.rglob("*.py")] if directory.is_dir() else []
    manifest = directory / "manifest.json"
    if manifest.is_file():
        stamps.append(manifest.stat().st_mtime)
    return max(stamps, default=0.0)


def cmd_dev(args: argparse.Namespace) -> int:
    """Watch and rebuild (``python -m wfbuild watch``) and run a worker that restarts
    whenever the build output changes (generated modules cannot be reloaded in place)."""
    import subprocess
    import time

    from wfkit.runtime.loading.loader import find_root

    build_dir = find_root() / ".wfkit" / "build"
    python = sys.executable
    watcher = subprocess.Popen([python, "-m", "wfbuild", "watch"])
    worker: subprocess.Popen[bytes] | None = None
    seen = -1.0
    world_args = ["--world", args.world] if args.world else []
    try:
        while watcher.poll() is None:
            stamp = _newest_mtime(build_dir)
            if stamp and stamp != seen:
                seen = stamp
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=30)
                    print("wfkit dev: build changed; restarting the worker", flush=True)
                worker = subprocess.Popen(
                    [
                        python,
                        "-m",
                        "wfkit",
                        *world_args,
                        "worker",
                        "--concurrency",
                        str(args.concurrency),
                    ]
                )
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (worker, watcher):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wfkit", description="Durable workflows for Python.")
    parser.add_argument(
        "--world",
        default=None,
        help="local | memory | postgresql://… | module:attr (default: $WFKIT_WORLD or local)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="consume the queues and run workflows and steps")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="message lease; a dead worker's messages are redelivered after it (default 30)",
    )
    p.add_argument(
        "--sweep-interval",
        type=float,
        default=60.0,
        help="seconds between sweeps re-enqueueing runs that lost their message (0: off)",
    )
    p.add_argument(
        "--build",
        action="append",
        default=None,
        metavar="PATH",
        help="a build directory to serve; give it more than once to serve several deployments, "
        "the newest last (default: $WFKIT_BUILD_DIR, <project>/.wfkit/build or an installed "
        "wheel's build)",
    )
    p.add_argument(
        "--kept",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve the deployments kept under <project>/.wfkit/deployments before the "
        "worker started that have runs in flight, and keep the project's own build there "
        "(default: on)",
    )
    p.add_argument(
        "--adopt",
        action="append",
        default=None,
        metavar="DEPLOYMENT|all",
        help="also serve the runs of this deployment (or of every deployment this worker does "
        "not serve: all) with this worker's newest code, moving them to it; guard changed "
        "code with wfkit.patched() and check it with `python -m wfbuild check --replay` first; "
        "repeatable (default: none)",
    )
    p.add_argument(
        "--unpinned",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve runs recorded without a deployment (wfkit 0.1.0's), with the newest "
        "deployment (default: on)",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="least severe wfkit log records written to stderr (default INFO)",
    )
    verbosity.add_argument("-v", "--verbose", action="store_true", help="same as --log-level DEBUG")
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text lines, or one JSON object per line with run_id/step_id fields (default text)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "export",
        help="write runs' event logs as JSON (for `python -m wfbuild check --replay`)",
    )
    p.add_argument("run_ids", nargs="+", metavar="RUN")
    p.add_argument(
        "--dir", default=None, help="write one RUN.json per run here (default: JSON on stdout)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("start", help="start a run; prints its id")
    p.add_argument(
        "workflow",
        help="workflow ID (workflow//./myapp/jobs//pipeline) or MODULE:FUNCTION "
        "(myapp.jobs:pipeline), looked up in the build's manifest",
    )
    p.add_argument("args", nargs="*", help="JSON arguments")
    p.add_argument("--run-id", default=None, help="a run id of your choosing (default: a new one)")
    p.add_argument(
        "--deployment",
        default="latest",
        help="the deployment the run is pinned to: 'latest' (the newest build known here that "
        "lists the workflow) or an ID from `wfkit deployments` (default: latest)",
    )
    p.set_defaults(func=cmd_start)

    p = sub.add_parser(
        "run", help="build, run a workflow to completion in-process, print its result"
    )
    p.add_argument("target", help="MODULE:FUNCTION")
    p.add_argument("args", nargs="*", help="JSON arguments")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", help="tables of runs, steps, events, hooks, waits, streams")
    p.add_argument("kind")
    p.add_argument("id", nargs="?", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("cancel", help="cancel a run")
    p.add_argument("run_id")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser(
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

    p = sub.add_parser("verify", help="re-fold every event log and compare with the records")
    p.add_argument("run_id", nargs="?", default=None)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("serve", help="serve webhooks, health and the manifest over HTTP (ASGI)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--build", default=None)
    p.add_argument("--worker", action="store_true", help="also run a worker in the same process")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("web", help="a run inspector in the browser (runs, steps, events, streams)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3456)
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("dev", help="watch + rebuild + a worker that restarts on each build")
    p.add_argument("--concurrency", type=int, default=8)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser(
        "deployments", help="deployments with their runs in flight (counts per status)"
    )
    p.add_argument("--all", action="store_true", help="also count ended runs (reads every run)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete kept copies (.wfkit/deployments) that no run in flight needs, first",
    )
    p.set_defaults(func=cmd_deployments)

    p = sub.add_parser(
        "deploy", help="keep a copy of the build under .wfkit/deployments/<id>/; prints the ID"
    )
    p.add_argument("--build", default=None, metavar="PATH", help="the build (default: as worker)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("heal", help="re-enqueue runs that lost their queue message")
    p.set_defaults(func=cmd_heal)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except Exception as exc:  # a clear one-line error for users, not a traceback
        from wfkit.worlds.base import WfkitError

        if not isinstance(exc, WfkitError | FileNotFoundError | ValueError):
            raise
        print(f"wfkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
