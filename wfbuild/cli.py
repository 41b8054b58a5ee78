"""The ``python -m wfbuild`` command line.

Exit codes: 0 success (``check``: up to date), 1 diagnostics in the sources
(``check``: stale or missing output), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wfbuild.discover import UsageError
from wfbuild.engine import BuildError, check_stale, run_build

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _prog() -> str:
    """``wfbuild`` when run as the console script, else ``python -m wfbuild``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "wfbuild" if name == "wfbuild" else "python -m wfbuild"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Transform wfkit workflow modules into replay bundles, step entrypoints, "
        "client modules and manifest.json.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "paths", nargs="*", metavar="PATHS", help="files or directories (default: the root)"
        )
        sub.add_argument(
            "--root", help="project root (default: nearest dir with pyproject.toml, else cwd)"
        )
        sub.add_argument("--out", help="build directory (default: <root>/.wfkit/build)")
        return sub

    for name, help_text in (
        ("build", "build (incrementally) the workflow bundles, step entrypoints and manifest"),
        ("watch", "build, then rebuild on every change until Ctrl-C"),
    ):
        sub = add(name, help_text)
        sub.add_argument("-j", "--jobs", type=int, help="worker processes (default: CPU count)")
        sub.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    check = add("check", "exit 1 when the build output is stale or missing (for CI)")
    check.add_argument(
        "--replay",
        metavar="SOURCE",
        action="append",
        help="also replay recorded runs against the build, without side effects, and exit 1 "
        "on any divergence: a JSON file or directory written by `wfkit export`, or a world "
        "(sqlite:///path, postgresql://..., local); may be given more than once",
    )
    return parser


def _build_once(args: argparse.Namespace) -> int:
    try:
        report = run_build(args.paths, root=args.root, out=args.out, jobs=args.jobs, progress=True)
    except BuildError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_FAILED
    for warning in report.warnings:
        print(warning.render(), file=sys.stderr)
    if not args.quiet:
        print(report.summary(), flush=True)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    reasons = check_stale(args.paths or None, root=args.root, out=args.out)
    if not reasons:
        print("wfbuild: build output is up to date")
        if args.replay:
            return _check_replay(args)
        return EXIT_OK
    print("wfbuild: build output is stale; run `python -m wfbuild build`", file=sys.stderr)
    for reason in reasons[:20]:
        print(f"  {reason}", file=sys.stderr)
    if len(reasons) > 20:
        print(f"  ... and {len(reasons) - 20} more", file=sys.stderr)
    return EXIT_FAILED


def _check_replay(args: argparse.Namespace) -> int:
    """Replay recorded runs against the up-to-date build (the runtime loads only here)."""
    from wfbuild.discover import find_root
    from wfkit.runtime.tools.replay_check import run_replay_check

    root = find_root(args.root)
    out = Path(args.out) if args.out else root / ".wfkit" / "build"
    return run_replay_check(args.replay, build_dir=out, root=root)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        print("wfbuild: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "build":
            return _build_once(args)
        if args.command == "check":
            return _check(args)
        from wfbuild.watch import watch

        return watch(args, _build_once)
    except UsageError as exc:
        print(f"wfbuild: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
