"""Where a project and its build are: the project root, ``.wfkit/``, the build directory.

The project root is the nearest directory at or above the current one (or a given
start) that holds a ``pyproject.toml``, exactly as ``python -m wfbuild`` finds it,
so the local world and the build are the same from any subdirectory. ``.wfkit/``
under the root holds the local world's database and the build output; it is created
with its own ``.gitignore`` (content ``*``) so neither git nor a build backend that
honours it picks up users' data (the Hatch hook also excludes it).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

__all__ = [
    "BUILD_ENV",
    "STATE_DIR",
    "WHEEL_BUILD_PACKAGE",
    "ensure_state_dir",
    "find_build_dir",
    "find_root",
]

BUILD_ENV = "WFKIT_BUILD_DIR"
STATE_DIR = ".wfkit"
WHEEL_BUILD_PACKAGE = "__wfkit_build__"
"""The directory an installed wheel carries its build in (the Hatch hook's default ``out``)."""

EDITABLE_POINTER = "editable.json"
STATE_GITIGNORE = "*\n"


def find_root(start: Path | str | None = None) -> Path:
    """The project root: the nearest directory at or above ``start`` with a pyproject.toml;
    without one, the nearest holding a ``.wfkit/`` (a project that is a plain folder:
    its first build or run made ``.wfkit/`` at its root); else ``start`` itself.

    Args:
        start: a file or directory (default: the current working directory).

    Returns:
        That directory, or ``start`` itself (resolved) when no ancestor has either, as
        for an installed app run from a deployment directory.
    """
    here = (Path.cwd() if start is None else Path(start)).resolve()
    if here.is_file():
        here = here.parent
    marked: Path | None = None
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
        if marked is None and (candidate / STATE_DIR).is_dir():
            marked = candidate
    return marked or here


def ensure_state_dir(root: Path) -> Path:
    """``<root>/.wfkit``, created if needed, with a ``.gitignore`` that ignores it all.

    An existing ``.wfkit`` without the file (made by an older wfkit) gets it too.

    Returns:
        The ``.wfkit`` directory.
    """
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text(STATE_GITIGNORE, encoding="utf-8")
    return state


def find_build_dir(start: Path | str | None = None) -> Path | None:
    """Where the build is, first match wins:

    1. ``$WFKIT_BUILD_DIR``;
    2. ``<project root>/.wfkit/build`` (the root found from ``start``, default cwd);
    3. an installed wheel's ``__wfkit_build__/`` on ``sys.path`` (or, for an editable
       install, the project build its ``editable.json`` points at).

    Returns:
        The directory holding ``manifest.json``, or None when there is none
        (``$WFKIT_BUILD_DIR`` is returned as given, whether or not it holds one).
    """
    env = os.environ.get(BUILD_ENV)
    if env:
        return Path(env).resolve()
    local = find_root(start) / STATE_DIR / "build"
    if (local / "manifest.json").is_file():
        return local
    spec = importlib.util.find_spec(WHEEL_BUILD_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / "manifest.json").is_file():
            return Path(location).resolve()
        pointer = Path(location) / EDITABLE_POINTER
        if pointer.is_file():
            target = _editable_target(pointer)
            if target is not None and (target / "manifest.json").is_file():
                return target.resolve()
    return None


def _editable_target(pointer: Path) -> Path | None:
    """The build directory an editable install's pointer names (None when unreadable)."""
    try:
        target = json.loads(pointer.read_text(encoding="utf-8"))["build_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(target) if isinstance(target, str) else None
