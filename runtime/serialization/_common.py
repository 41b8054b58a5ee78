"""Constants and class lookups shared by the encoder and the decoder."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.loading import registry
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
    """The class a tagged value names: registered ID for this mode, else import path.

    Raises:
        LookupError: neither registered nor importable.
        TypeError: the object found is not a subclass of ``base``.
    """
    cls: Any = None
    class_id = d.get("id")
    if class_id is not None:
        cls = registry.find_class(class_id, current_mode.get())
    path = d.get("cls")
    if cls is None and isinstance(path, str):
        cls = import_class(path)
    if cls is None:
        raise LookupError(
            f"class {class_id or path!r} is not registered and cannot be imported here"
        )
    if not isinstance(cls, type) or (base is not None and not issubclass(cls, base)):
        raise TypeError(f"{path!r} is not a {base.__name__ if base else 'class'}")
    return cls


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
    """``module.QualName`` (builtins without the module)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
