"""The ``[tool.hatch.build.hooks.wfkit]`` table, validated with every error reported at once.

Keys (all optional)::

    [tool.hatch.build.hooks.wfkit]
    paths = ["myapp"]                  # root-relative files/dirs to transform; default ["."]
    out = "__wfkit_build__"            # directory inside the wheel; default __wfkit_build__
    include-client = true              # also ship client-mode modules under <out>/client/

Hatch's own per-hook keys (``dependencies``, ``require-runtime-dependencies``,
``require-runtime-features``, ``enable-by-default``) are accepted and left to Hatch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

PREFIX = "tool.hatch.build.hooks.wfkit"
BUILD_DIR_PACKAGE = "__wfkit_build__"
HATCH_KEYS = frozenset(
    {
        "dependencies",
        "require-runtime-dependencies",
        "require-runtime-features",
        "enable-by-default",
    }
)
OUR_KEYS = ("paths", "out", "include-client")


class HookConfigError(ValueError):
    """The hook's table is invalid; ``errors`` holds every problem, each prefixed by its TOML path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(
            "invalid wfkit build hook configuration:\n" + "\n".join(f"  {e}" for e in errors)
        )


@dataclass(frozen=True)
class HookConfig:
    """The validated configuration.

    Attributes:
        paths: root-relative posix paths to transform.
        out: posix directory inside the wheel for the manifest and the bundles.
        include_client: whether client-mode modules ship too (under ``<out>/client/``).
    """

    paths: tuple[str, ...]
    out: str
    include_client: bool


def _relative_path_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if "\\" in value:
        return "must use / separators"
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", value):
        return "must be relative to the project root"
    if ".." in path.parts:
        return "must not contain '..'"
    return None


def parse_config(raw: Mapping[str, Any]) -> HookConfig:
    """Validate the hook's table.

    Args:
        raw: the table as Hatch passes it (``BuildHookInterface.config``).

    Returns:
        The validated `HookConfig`.

    Raises:
        HookConfigError: listing every problem, each as ``tool.hatch.build.hooks.wfkit.<key>: ...``.
    """
    errors: list[str] = []
    for key in sorted(set(raw) - set(OUR_KEYS) - HATCH_KEYS):
        errors.append(f"{PREFIX}.{key}: unknown key (expected one of: {', '.join(OUR_KEYS)})")

    paths: tuple[str, ...] = (".",)
    if "paths" in raw:
        value = raw["paths"]
        if not isinstance(value, list) or not value:
            errors.append(f"{PREFIX}.paths: expected a non-empty array of strings, got {value!r}")
        else:
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    errors.append(f"{PREFIX}.paths[{i}]: expected a string, got {item!r}")
                elif problem := _relative_path_problem(item):
                    errors.append(f"{PREFIX}.paths[{i}]: {problem} ({item!r})")
            paths = tuple(str(item) for item in value)

    # The runtime (runtime/loader.py) looks for ``__wfkit_build__/manifest.json`` on sys.path.
    out = BUILD_DIR_PACKAGE
    if "out" in raw:
        value = raw["out"]
        if not isinstance(value, str):
            errors.append(f"{PREFIX}.out: expected a string, got {value!r}")
        elif problem := _relative_path_problem(value):
            errors.append(f"{PREFIX}.out: {problem} ({value!r})")
        else:
            out = str(PurePosixPath(value))

    include_client = True
    if "include-client" in raw:
        value = raw["include-client"]
        if not isinstance(value, bool):
            errors.append(f"{PREFIX}.include-client: expected a boolean, got {value!r}")
        else:
            include_client = value

    if errors:
        raise HookConfigError(errors)
    return HookConfig(paths=paths, out=out, include_client=include_client)
