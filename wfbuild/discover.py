"""Finding the project root and the Python sources a build covers.

Discovery is deliberately cheap: every file is read once and checked for the
directive strings (phase 1 of the build); only the files that might carry
directives or serializable classes are parsed by the transformer (phase 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wfkit.transformer.directives import DIRECTIVES, is_directive_like

SKIPPED_DIRS = frozenset(
    {".wfkit", ".venv", "venv", "build", "dist", "node_modules", ".git", "__pycache__"}
)
"""Directory names never descended into (hidden directories are skipped too)."""

_EXACT_MARKERS = (*(d.encode() for d in DIRECTIVES), b"__wfkit_serialize__")
_SHORTEST = min(len(d) for d in DIRECTIVES)
_LONGEST = max(len(d) for d in DIRECTIVES)
# string literals as long as a directive give or take one character
_SHORT_LITERAL = re.compile(rb"""(['"])([^'"\n]{%d,%d})\1""" % (_SHORTEST - 1, _LONGEST + 1))


class UsageError(ValueError):
    """Bad arguments: a path that does not exist or lies outside the root, a bad out dir."""


@dataclass(frozen=True)
class SourceFile:
    """One discovered source: its root-relative posix path and its bytes."""

    relpath: str
    abspath: Path
    data: bytes

    @property
    def is_candidate(self) -> bool:
        """Whether the transformer must look at this file (see `might_need_transform`)."""
        return might_need_transform(self.data)


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Return the nearest directory at or above ``start`` holding a ``pyproject.toml``;
    without one, the nearest holding a ``.wfkit/`` directory (a project that is a plain
    folder, built before from its root), as the runtime finds it.

    Args:
        start: a file or directory; defaults to the current working directory.

    Returns:
        The project root, or ``start`` itself (resolved) when no ancestor has either.
    """
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    if here.is_file():
        here = here.parent
    marked: Path | None = None
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
        if marked is None and (candidate / ".wfkit").is_dir():
            marked = candidate
    return marked or here


def might_need_transform(data: bytes) -> bool:
    """Cheap text check: could this file hold a directive (or a near-miss) or a serde class?

    Exact directive strings and ``__wfkit_serialize__`` are plain substring checks.
    A misspelled directive (edit distance 1, an error the transformer must report)
    is looked for only in files defining an ``async def``, among short string literals.
    """
    if any(marker in data for marker in _EXACT_MARKERS):
        return True
    if b"async def" not in data:
        return False
    for match in _SHORT_LITERAL.finditer(data):
        literal = match.group(2).decode("utf-8", "replace")
        if is_directive_like(literal):
            return True
    return False


def _is_skipped_dir(name: str, path: Path) -> bool:
    if name in SKIPPED_DIRS or name.startswith("."):
        return True
    # A virtual environment under any name.
    return (path / "pyvenv.cfg").is_file()


def _walk_python_files(top: Path, out_dir: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [
            d
            for d in dirnames
            if not _is_skipped_dir(d, here / d) and (here / d).resolve() != out_dir
        ]
        for name in filenames:
            if name.endswith(".py"):
                yield here / name


def resolve_paths(root: Path, paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    """Resolve user-given PATHS (relative to the cwd) and check they exist under ``root``.

    Raises:
        UsageError: a path does not exist or is outside the root.
    """
    if not paths:
        configured = configured_paths(root)
        if not configured:
            return [root]
        paths = [root / p for p in configured]
    resolved: list[Path] = []
    for raw in paths:
        path = Path(raw).resolve()
        if not path.exists():
            raise UsageError(f"no such file or directory: {raw}")
        if path != root and root not in path.parents:
            raise UsageError(f"{raw} is outside the project root {root}")
        resolved.append(path)
    return resolved


def configured_paths(root: Path) -> list[str]:
    """``[tool.wfkit] paths`` from the root's pyproject.toml (what to build by default).

    Raises:
        UsageError: the setting is not a list of strings.
    """
    import tomllib

    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return []
    with pyproject.open("rb") as handle:
        config = tomllib.load(handle).get("tool", {}).get("wfkit", {})
    paths = config.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise UsageError(f"{pyproject}: tool.wfkit.paths must be a list of strings, got {paths!r}")
    return paths


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (``.`` for the root itself)."""
    return path.relative_to(root).as_posix() or "."


def discover_sources(root: Path, paths: Sequence[Path], out_dir: Path) -> list[SourceFile]:
    """Read every ``*.py`` file under ``paths``, skipping tool, cache and output directories.

    An explicitly named file is always included. The result is sorted by relative path,
    so everything downstream is independent of the file system's listing order.
    """
    found: dict[str, Path] = {}
    for path in paths:
        files: Iterable[Path]
        if path.is_file():
            files = [path]
        else:
            files = _walk_python_files(path, out_dir)
        for file in files:
            absolute = file.resolve() if file.is_symlink() else file
            if out_dir in absolute.parents:
                continue
            found.setdefault(relative_posix(file, root), file)
    return [SourceFile(rel, found[rel], found[rel].read_bytes()) for rel in sorted(found)]
