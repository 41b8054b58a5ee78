"""Stable names: dotted module names, IDs and qualname keys.

IDs follow the Workflow DevKit's ``format_name``: ``<kind>//./<path>//<qualname>``, where
``<path>`` is the project-relative source path with ``/`` separators and no extension. They
must be identical across builds and machines, so they depend on nothing but the path and
the qualname key.
"""

from __future__ import annotations

from typing import Literal

IdKind = Literal["workflow", "step", "class"]

__all__ = ["IdKind", "make_id", "module_name_for", "strip_extension"]


def _posix(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def strip_extension(path: str) -> str:
    """Return ``path`` with ``/`` separators and its ``.py``/``.pyi`` extension removed."""
    path = _posix(path)
    for ext in (".py", ".pyi"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def module_name_for(path: str) -> str:
    """The dotted module name of a root-relative source path.

    Args:
        path: e.g. ``pkg/mod.py`` or ``pkg\\__init__.py``.

    Returns:
        ``pkg.mod`` for a module, ``pkg`` for a package's ``__init__.py``.
    """
    parts = strip_extension(path).split("/")
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(p for p in parts if p)


def make_id(kind: IdKind, path: str, qualname: str) -> str:
    """The stable ID of a workflow, step or class.

    Args:
        kind: ``"workflow"``, ``"step"`` or ``"class"``.
        path: the root-relative source path (extension and ``\\`` separators tolerated).
        qualname: the qualname key: ``fn``, ``outer/inner``, ``Cls.method``, ``Cls#method``.

    Returns:
        e.g. ``workflow//./examples/order//checkout``.
    """
    return f"{kind}//./{strip_extension(path)}//{qualname}"


def is_package_init(path: str) -> bool:
    """True when ``path`` names a package's ``__init__`` module."""
    return strip_extension(path).split("/")[-1] == "__init__"
