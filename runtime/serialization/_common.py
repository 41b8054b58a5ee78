"""Constants and class lookups shared by the encoder and the decoder."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from wfkit.runtime.loading.twins import canonical_module
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


@functools.lru_cache(maxsize=1024)
def import_class(path: str) -> Any:
    """``module:qualname`` -> the object, or None (never raises, never evals).

    Imports the module: for the encoder, which asks about the class of a value it holds
    (so its module is imported already). Decoding never calls this (``_classes``)."""
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
