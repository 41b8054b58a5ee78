"""``python -m wfbuild watch``: build, then rebuild whenever a Python source changes.

Uses ``watchfiles`` (OS notifications) when it is installed, else polls the
sources' modification times every half second. Changes under the build
directory, hidden and tool directories are ignored, so a build never triggers
itself. Ctrl-C ends the watch with exit code 0.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from wfbuild.discover import SKIPPED_DIRS, find_root, resolve_paths
from wfbuild.engine import resolve_out_dir
from wfbuild.parallel import default_transform

POLL_INTERVAL = 0.5


def _is_relevant(path: Path, root: Path, out_dir: Path) -> bool:
    if path.suffix != ".py" or out_dir in path.parents:
        return False
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return False
    return not any(part in SKIPPED_DIRS or part.startswith(".") for part in parts)


def _changes_watchfiles(paths: list[Path], root: Path, out_dir: Path) -> Iterator[None]:
    import watchfiles

    def relevant(_change: object, path: str) -> bool:
        return _is_relevant(Path(path), root, out_dir)

    for _changes in watchfiles.watch(*paths, watch_filter=relevant, debounce=200, step=50):
        yield None


def _snapshot(paths: list[Path], root: Path, out_dir: Path) -> dict[Path, tuple[int, int]]:
    seen: dict[Path, tuple[int, int]] = {}
    for top in paths:
        for file in [top] if top.is_file() else top.rglob("*.py"):
            if _is_relevant(file, root, out_dir):
                try:
                    stat = file.stat()
                except OSError:
                    continue
                seen[file] = (stat.st_mtime_ns, stat.st_size)
    return seen


def _changes_polling(paths: list[Path], root: Path, out_dir: Path) -> Iterator[None]:
    before = _snapshot(paths, root, out_dir)
    while True:
        time.sleep(POLL_INTERVAL)
        now = _snapshot(paths, root, out_dir)
        if now != before:
            before = now
            yield None


def watch(args: argparse.Namespace, build_once: Callable[[argparse.Namespace], int]) -> int:
    """Build, then rebuild on each change; returns 0 on Ctrl-C.

    Raises:
        UsageError: bad paths or out dir (reported before watching starts).
    """
    root = find_root() if args.root is None else Path(args.root).resolve()
    paths = resolve_paths(root, args.paths)
    out_dir = resolve_out_dir(root, args.out)
    try:
        import watchfiles  # noqa: F401

        changes = _changes_watchfiles(paths, root, out_dir)
    except ImportError:
        changes = _changes_polling(paths, root, out_dir)
    try:
        build_once(args)
        # a rebuild after an edit transforms a few files in this process: load the
        # transformer (libcst) now, while nothing happens, not when the developer waits
        default_transform()
        print("wfbuild: watching for changes (Ctrl-C to stop)", flush=True)
        for _ in changes:
            build_once(args)
    except KeyboardInterrupt:
        pass
    return 0
