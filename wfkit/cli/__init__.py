"""The ``wfkit`` command: run workers, start and inspect runs, verify and heal a world.

One module per group of subcommands, each with a ``register(sub)`` adding its parsers:
``runs`` (start, run, cancel, retry, export), ``results`` (result, resume, stream),
``inspecting`` (inspect, verify, heal), ``catalog`` (workflows), ``deploying``
(deployments, deploy), ``processes`` (worker, serve, web), ``schedules`` and ``dev``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import wfkit
from wfkit.cli import (
    catalog,
    deploying,
    dev,
    inspecting,
    processes,
    results,
    runs,
    schedules,
)
from wfkit.cli.common import missing_extra
from wfkit.runtime.serialization.keys import current_settings


def build_parser() -> argparse.ArgumentParser:
    """The ``wfkit`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="wfkit", description="Durable workflows for Python.")
    parser.add_argument(
        "--world",
        default=None,
        help="local | memory | postgresql://… | module:attr (default: $WFKIT_WORLD or local)",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"wfkit {wfkit.__version__}",
        help="print the version",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="(wfkit COMMAND --help: its options)"
    )
    for group in (processes, dev, runs, results, inspecting, catalog, deploying, schedules):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wfkit`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        current_settings()  # a malformed WFKIT_ENCRYPTION_KEY stops every command at once
        code: int = args.func(args)
    except KeyboardInterrupt:  # Ctrl-C (e.g. while waiting for the database): no traceback
        return 130
    except BrokenPipeError:  # `wfkit ... | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # Python flushes stdout at exit: let it, quietly
        return 0
    except Exception as exc:  # a clear one-line error for users, not a traceback
        from wfkit.worlds.base import WfkitError

        install = missing_extra(exc)
        if install is not None:
            print(f"wfkit {args.command}: {install}", file=sys.stderr)
            return 1
        if not isinstance(exc, WfkitError | FileNotFoundError | ValueError):
            raise
        print(f"wfkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code


__all__ = ["build_parser", "main"]
