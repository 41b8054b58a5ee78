"""Constants and class lookups shared by the encoder and the decoder."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.twins import canonical_module, class_path_for_mode
from wfkit.runtime.serialization._renames import current_module_name

TAG = "$t"
"""The marker key of every tagged value."""

MAX_SAFE_INT = 2**53 - 1
HINT = (
    "hint: use a dataclass, a pydantic model, or a class with "
    "__wfkit_serialize__/__wfkit_deserialize__"
)
REMOTE_NOTE = "Remote traceback:\n"
_NoneType = type(None)
# Values that are their own JSON encoding: no call needed, in either direction
# (int and float need a range/finiteness check when serializing).
PLAIN_OUT: frozenset[type] = frozenset({str, bool, _NoneType})
PLAIN_IN: frozenset[type] = frozenset({str, int, float, bool, _NoneType})
STR: frozenset[type] = frozenset({str})

Encoder = Callable[[Any], Any]

# --- classes -------------------------------------------------------------------------


def resolve_class(d: dict[str, Any], base: type | None) -> Any:
    """The class a tagged value names, as the code of the current mode sees it.

    ``"cls"`` names the user's class (``myapp.jobs:Parcel``); in workflow mode that is
    the workflow twin's class when the module has one (``twins.class_path_for_mode``),
    so ``isinstance`` holds in client code, steps and workflows alike. A registered
    class ID is the fallback when the path cannot be imported here.

    Raises:
        LookupError: neither importable nor registered.
        TypeError: the object found is not a subclass of ``base``.
    """
    cls: Any = None
    mode = current_mode.get()
    path = d.get("cls")
    if isinstance(path, str):
        cls = class_in_mode(path, mode, registry.twins_generation())
    class_id = d.get("id")
    if cls is None and isinstance(class_id, str):
        cls = registry.find_class(class_id, mode)
    if cls is None:
        raise LookupError(
            f"class {class_id or path!r} is not registered and cannot be imported here"
        )
    if not isinstance(cls, type) or (base is not None and not issubclass(cls, base)):
        raise TypeError(f"{path!r} is not a {base.__name__ if base else 'class'}")
    return cls


@functools.lru_cache(maxsize=2048)
def class_in_mode(path: str, mode: str, twins_generation: int) -> Any:
    """``import_class`` of what ``path`` stands for in ``mode``, cached on the hot decode
    path; ``twins_generation`` keys the cache to the loaded builds (see the registry)."""
    return import_class(class_path_for_mode(path, mode))


@functools.lru_cache(maxsize=1024)
def import_class(path: str) -> Any:
    """``module:qualname`` -> the object, or None (never raises, never evals)."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname or "<locals>" in qualname:
        return None
    try:
        obj: Any = importlib.import_module(current_module_name(module_name))
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj


# --- errors ----------------------------------------------------------------------------


def qualified_name(cls: type) -> str:
    """``module.QualName`` of the user's class (builtins without the module; a generated
    twin's class by the user's module, ``myapp.jobs.Parcel``)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{canonical_module(cls.__module__)}.{cls.__qualname__}"


@functools.lru_cache(maxsize=1024)
def class_path(cls: type) -> str:
    """``module:qualname`` of the user's class, as stored values name it."""
    return f"{canonical_module(cls.__module__)}:{cls.__qualname__}"


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
