"""Constants and class lookups shared by the encoder and the decoder."""

from __future__ import annotations

import collections
import functools
import importlib
import pathlib
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

DEFAULT_FACTORIES: dict[str, Callable[[], Any] | None] = {
    "list": list,
    "dict": dict,
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "int": int,
    "float": float,
    "complex": complex,
    "str": str,
    "bytes": bytes,
    "bool": bool,
    "OrderedDict": collections.OrderedDict,
    "Counter": collections.Counter,
    "deque": collections.deque,
}
"""The ``default_factory`` values a stored ``defaultdict`` may have (besides None), by the
name it is stored under: types whose call takes no argument and runs no user code."""

PATH_KINDS: dict[str, type[pathlib.PurePath]] = {
    cls.__name__: cls
    for cls in (
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    )
}
"""The ``pathlib`` classes, by the name a stored path gives its kind."""

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
    """``str(exc)`` as an exact ``str`` (a ``__str__`` may return a subclass)."""
    try:
        return str.__str__(str(exc))
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
