"""wfbuild: ``python -m wfbuild build | check | watch`` over the transformer.

The Python API (``wfkit.run`` imports it lazily to rebuild a stale tree)::

    report = wfbuild.build()            # -> BuildReport; raises BuildError on bad sources
    if wfbuild.is_stale(): ...
    root = wfbuild.find_root(path)

Importing this package does not load the transformer (libcst); `build` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from wfbuild.discover import UsageError, find_root
from wfbuild.engine import BuildError, BuildReport, check_stale, run_build

__all__ = ["BuildError", "BuildReport", "UsageError", "build", "find_root", "is_stale"]


def build(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    progress: bool = False,
) -> BuildReport:
    """Transform the project's workflow modules into ``out`` (incrementally).

    Args:
        paths: files or directories to build (default: the whole root).
        root: the project root (default: nearest directory with a pyproject.toml, else cwd).
        out: the build directory (default: ``<root>/.wfkit/build``).
        jobs: worker processes for large trees (default: CPU count; 1 = in-process).
        progress: show progress on stderr when the transform takes more than a moment.

    Returns:
        A `BuildReport` (counts, time, out dir).

    Raises:
        BuildError: some source has errors; its ``diagnostics`` hold all of them, and
            nothing was written.
        UsageError: a path does not exist or lies outside the root, or a bad out dir.
    """
    return run_build(paths, root=root, out=out, jobs=jobs, progress=progress)


def is_stale(
    root: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None
) -> bool:
    """Whether the build output is missing or out of date with the sources.

    Checks the paths the last build covered, without transforming anything.

    Args:
        root: the project root (default: as for `build`).
        out: the build directory (default: ``<root>/.wfkit/build``).
    """
    return bool(check_stale(root=root, out=out))
