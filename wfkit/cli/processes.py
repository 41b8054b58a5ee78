"""``wfkit worker``, ``serve`` and ``web``: the commands that keep running."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from wfkit.cli.common import Subcommands, add_command, reachable_world_of
from wfkit.runtime.tools.http_server import DEFAULT_MAX_BODY_BYTES


def cmd_worker(args: argparse.Namespace) -> int:
    from wfkit.runtime.engine.collector import tune_for_worker
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.loading.loader import load_build
    from wfkit.runtime.loading.project import find_root
    from wfkit.runtime.observability.logs import configure_logging

    configure_logging("DEBUG" if args.verbose else args.log_level, log_format=args.log_format)
    builds = args.build or [load_build().build_dir]
    worker = Worker(
        world=reachable_world_of(args),
        builds=builds,
        serve_unpinned=args.unpinned,
        kept_root=find_root() if args.kept else None,
        adopt=args.adopt or (),
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
        sweep_interval=args.sweep_interval,
        feed_deadline=args.feed_deadline,
    )
    tune_for_worker()

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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from wfkit.runtime.loading.loader import load_build
    from wfkit.runtime.tools.http import create_app
    from wfkit.runtime.tools.http_server import uvicorn_config

    load_build(args.build)
    world = reachable_world_of(args)
    app = create_app(world, max_body_bytes=args.max_body_bytes)
    server = uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port))
    if not args.worker:
        server.run()
        return 0
    from wfkit.runtime.engine.collector import tune_for_worker
    from wfkit.runtime.engine.worker import Worker

    tune_for_worker()

    async def main() -> None:
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
    """Serve the run inspector (``runtime/tools/web``); it reads the world, loads no build."""
    import os
    import threading
    import webbrowser

    import uvicorn

    from wfkit.runtime.tools.http_server import uvicorn_config
    from wfkit.runtime.tools.web import create_web_app
    from wfkit.runtime.tools.web.security import binding_problem, host_name

    access_token = args.access_token or os.environ.get("WFKIT_WEB_TOKEN") or None
    problem = binding_problem(args.host, access_token)
    if problem is not None:
        print(f"wfkit web: {problem}", file=sys.stderr)
        return 2
    bound = host_name(args.host)
    app = create_web_app(
        reachable_world_of(args),
        allowed_hosts=(bound, *(args.allow_host or ())),
        access_token=access_token,
    )
    url = f"http://{args.host}:{args.port}/"
    print(f"wfkit web: inspecting world={args.world or 'default'} at {url}", flush=True)
    if access_token:
        print(
            f"wfkit web: open {url}?token=<your token> once (a cookie), or send "
            "Authorization: Bearer <your token>",
            flush=True,
        )
    if not args.no_browser:
        login = f"{url}?token={access_token}" if access_token else url
        threading.Timer(0.8, webbrowser.open, args=(login,)).start()
    uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port, log_level="warning")).run()
    return 0


def register(sub: Subcommands) -> None:
    """Add this module's subcommands to the ``wfkit`` parser."""
    p = add_command(sub, "worker", help="consume the queues and run workflows and steps")
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,  # runtime.engine.worker.DEFAULT_CONCURRENCY (not imported: startup)
        help="how many runs and steps this worker works at once",
    )
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="message lease in seconds; a dead worker's messages are redelivered after it",
    )
    p.add_argument(
        "--feed-deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a workflow that runs this long without yielding to the replay loop (a busy "
        "loop) fails its run; 0: no bound (default: $WFKIT_FEED_DEADLINE or 5)",
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
        help="least severe wfkit log records written to stderr",
    )
    verbosity.add_argument("-v", "--verbose", action="store_true", help="same as --log-level DEBUG")
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text lines, or one JSON object per line with run_id/step_id fields",
    )
    p.set_defaults(func=cmd_worker)

    p = add_command(sub, "serve", help="serve webhooks, health and the manifest over HTTP (ASGI)")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on")
    p.add_argument(
        "--build",
        default=None,
        metavar="PATH",
        help="the build whose manifest and webhooks are served (default: as worker)",
    )
    p.add_argument("--worker", action="store_true", help="also run a worker in the same process")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest webhook request body accepted; larger ones get 413 unread "
        f"(default {DEFAULT_MAX_BODY_BYTES}, 1 MiB)",
    )
    p.set_defaults(func=cmd_serve)

    p = add_command(
        sub, "web", help="a run inspector in the browser (runs, steps, events, streams)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (anything but loopback exposes the inspector)",
    )
    p.add_argument("--port", type=int, default=3456, help="the port to listen on")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--access-token",
        default=None,
        metavar="TOKEN",
        help="every request must carry it (Authorization: Bearer TOKEN, or open ?token=TOKEN "
        "once for a cookie); required to bind anything but loopback (default: "
        "$WFKIT_WEB_TOKEN, else none)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a host name the inspector answers to besides loopback names, IP addresses and "
        "--host (repeatable; default: none)",
    )
    p.set_defaults(func=cmd_web)
