"""``wfkit dev``: ``python -m wfbuild watch`` plus a worker restarted on every new build.

The two are child processes this command owns: SIGTERM or SIGINT sent to ``wfkit dev``
is forwarded to both, and it waits for them to exit (a child that does not within
``STOP_SECONDS`` is killed), so stopping ``wfkit dev`` never leaves a watcher or a
worker running on its own.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from wfkit.cli.common import Subcommands, add_command

STOP_SECONDS = 20.0
"""How long the children get to stop after the signal is forwarded, before SIGKILL."""

FORWARDED = (signal.SIGTERM, signal.SIGINT)


def _newest_mtime(directory: Path) -> float:
    stamps = [p.stat().st_mtime for p in directory.rglob("*.py")] if directory.is_dir() else []
    manifest = directory / "manifest.json"
    if manifest.is_file():
        stamps.append(manifest.stat().st_mtime)
    return max(stamps, default=0.0)


def stop_children(children: Sequence[subprocess.Popen[bytes] | None], signum: int) -> None:
    """Send ``signum`` to each child still running, wait for them all (``STOP_SECONDS`` in
    total), then SIGKILL and reap any left."""
    live = [c for c in children if c is not None and c.poll() is None]
    for child in live:
        child.send_signal(signum)
    deadline = time.monotonic() + STOP_SECONDS
    for child in live:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cmd_dev(args: argparse.Namespace) -> int:
    """Watch and rebuild (``python -m wfbuild watch``) and run a worker that restarts
    whenever the build output changes (generated modules cannot be reloaded in place)."""
    from wfkit.runtime.loading.loader import find_root

    build_dir = find_root() / ".wfkit" / "build"
    python = sys.executable
    received: list[int] = []
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stopping.set()

    # Installed before the children start: a signal in between still stops them.
    previous = {sig: signal.signal(sig, on_signal) for sig in FORWARDED}
    watcher: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    seen = -1.0
    world_args = ["--world", args.world] if args.world else []
    try:
        watcher = subprocess.Popen([python, "-m", "wfbuild", "watch"])
        while watcher.poll() is None and not stopping.is_set():
            stamp = _newest_mtime(build_dir)
            if stamp and stamp != seen:
                seen = stamp
                if worker is not None:
                    stop_children([worker], signal.SIGTERM)
                    print("wfkit dev: build changed; restarting the worker", flush=True)
                concurrency = ["--concurrency", str(args.concurrency)]
                worker = subprocess.Popen(
                    [python, "-m", "wfkit", *world_args, "worker", *concurrency]
                )
            stopping.wait(0.5)
    finally:
        stop_children([worker, watcher], received[0] if received else signal.SIGTERM)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def register(sub: Subcommands) -> None:
    """Add ``dev`` to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "dev",
        help="watch + rebuild + a worker that restarts on each build",
        description="Run `python -m wfbuild watch` and a worker restarted on each new build. "
        "SIGTERM or Ctrl-C stops both and waits for them.",
    )
    p.add_argument("--concurrency", type=int, default=64, help="the worker's --concurrency")
    p.set_defaults(func=cmd_dev)
