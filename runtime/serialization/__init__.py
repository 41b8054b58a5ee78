"""Values that cross a durable boundary: Python objects <-> JSON-compatible data, never pickle.

Everything a step or workflow passes, returns or raises is stored in the event log
as JSON text (ARCHITECTURE.md §2). ``serialize`` turns a Python value into plain
JSON data (dicts with ``str`` keys, lists, ``str``, ``int``, finite ``float``,
``bool``, ``None``); ``deserialize`` turns it back, with its types.

Tag format. Plain JSON values stay plain. Every other value becomes a dict with
the one marker key ``"$t"`` naming its kind, and its payload under ``"v"``::

    {"$t": "int", "v": "9007199254740993"}          int beyond ±(2**53 - 1); "x": hex
                                                     when too long for str()
    {"$t": "float", "v": "nan" | "inf" | "-inf" | "-0.0"}
    {"$t": "bytes" | "bytearray", "v": base64}
    {"$t": "tuple" | "set" | "frozenset", "v": [<ser>...]}
    {"$t": "dict", "v": [[<ser key>, <ser value>]...]}   non-str keys, or a "$t" key
    {"$t": "datetime" | "date" | "time", "v": isoformat, "tz"?: ZoneInfo key,
     "tzname"?: a datetime.timezone's own name, "fold"?: 1}
    {"$t": "timedelta", "v": [days, seconds, microseconds]}
    {"$t": "decimal" | "uuid", "v": str}
    {"$t": "complex", "v": [<ser real>, <ser imag>]}
    {"$t": "path", "v": str, "kind": "PurePosixPath" | "PureWindowsPath" | "PosixPath"
     | "WindowsPath"}                     a concrete path of the other OS reads back pure
    {"$t": "odict" | "counter", "v": [[<ser key>, <ser value>]...]}     OrderedDict, Counter
    {"$t": "ddict", "factory": null | "list" | "int" | ..., "v": [[<ser key>, <ser value>]...]}
    {"$t": "deque", "v": [<ser>...], "maxlen"?: int}
    {"$t": "enum", "cls": "mod:Qual", "id"?: class id, "v": <ser value>}
    {"$t": "dc", "cls": ..., "id"?: ..., "v": {field: <ser>}}          dataclass
    {"$t": "model", "cls": ..., "id"?: ..., "v": {field: <ser>},       pydantic model
     "set"?: [fields set], "extra"?: {<ser>}, "private"?: {<ser>}}
    {"$t": "ntuple", "cls": ..., "v": [<ser>...]}                        namedtuple
    {"$t": "obj", "cls": ..., "id"?: ..., "v": <ser of __wfkit_serialize__()>}
    {"$t": "exc", "cls": ..., "id"?: ..., "type": "mod.Qual", "msg": str(exc),
     "args": [<ser>...], "attrs": {<ser> of __dict__}, "stack"?: str, "cause"?: <exc>}
    {"$t": "step", "v": step id, "closure": <ser dict> | null, "this"?: <ser>}
    {"$t": <codec tag>, "v": <ser of encode(value)>}                      register_codec

``"cls"`` is always ``"module:qualname"`` of the **user's** class, also for an instance
of a generated twin's copy (``myapp.jobs:Parcel``, never ``__wfkit_step__.myapp.jobs:...``);
``"id"`` is the manifest class ID when the class is registered. Decoding imports the
class that name stands for in the current mode (``loading.twins.class_path_for_mode``:
the workflow twin's in workflow code, the user's own elsewhere), else looks the ID up
(``registry.find_class``), and accepts what it finds only if it is the expected kind
(a dataclass for ``"dc"``, an Enum for ``"enum"``...).
Classes that could not be read back (defined in a function, not registered) fail
at ``serialize`` time, except exceptions, which read back as ``StepError``.

A user dict that contains the key ``"$t"`` is stored as ``{"$t": "dict", ...}`` so
no user data is ever read as a tag. Every payload is itself ``<ser>`` data.

At rest, a payload may be wrapped in an ``encr`` or ``gzip`` envelope (``at_rest.py``:
writers call ``seal``/``seal_error`` on what they store); ``deserialize``,
``deserialize_call`` and ``deserialize_error`` open one first, so readers need not care
whether a log was written plain, encrypted, or both.

Alternatives rejected: pickle (unsafe, opaque in the inspector, breaks across
code versions); one wrapper per value such as ``{"type": ..., "value": ...}``
(doubles the size of plain data and slows the replay path, where most values
are plain); ``json`` hooks (``default``/``object_hook``) as the only mechanism
(they cannot tag tuples, sets or non-str keys, and worlds hand us parsed data).

Speed. ``deserialize`` is on the replay hot path: scalars are returned as they
are, and a list or dict holding only scalars is recognised in one C-level pass
(``frozenset.issuperset(map(type, ...))``) and copied; other containers take one
comprehension with an inline type test, without a call per scalar. ``serialize``
does the same for lists and dicts and dispatches other values on their exact
type through a cache, so the ``isinstance`` ladder runs once per type. Paths
(``args[1]["items"][3]``) are built only when a value fails, while the error
unwinds; cycles are looked for only after Python's recursion limit trips, so the
common path pays nothing for them.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Callable
from typing import Any

from wfkit.runtime.errors import SerializationError, StepError
from wfkit.runtime.serialization._classes import UntrustedClassError, register_type
from wfkit.runtime.serialization._common import (
    PLAIN_IN,
    REMOTE_NOTE,
    TAG,
    qualified_name,
    safe_str,
)
from wfkit.runtime.serialization._cycles import recursion_error
from wfkit.runtime.serialization._decode import (
    BUILTIN_DECODERS,
    DECODERS,
    Undecodable,
    de_value,
    decode_codec,
)
from wfkit.runtime.serialization._encode import (
    CODEC_TAG_BY_TYPE,
    CODECS,
    Unserializable,
    reset_encoder_cache,
    ser_exception,
    ser_value,
    serialization_error,
)
from wfkit.runtime.serialization.at_rest import SEALED_TAGS, open_error, open_payload

__all__ = [
    "TAG",
    "deserialize",
    "deserialize_call",
    "deserialize_error",
    "dumps",
    "loads",
    "register_codec",
    "register_type",
    "serialize",
    "serialize_call",
    "serialize_error",
]


# --- public API --------------------------------------------------------------------


def serialize(value: Any, *, path: str = "value") -> Any:
    """Turn a Python value into JSON-compatible data (see the module docstring for types).

    Args:
        value: what to store.
        path: the name of ``value`` in error messages, e.g. ``"args"``.

    Returns:
        dicts with str keys, lists, str, int, finite float, bool and None only.

    Raises:
        SerializationError: a value of an unsupported type, a cycle, or a
            ``__wfkit_serialize__`` that failed; ``.type_name`` and ``.path`` say
            which value and where (``args[1]["items"][3]``).
    """
    try:
        return ser_value(value)
    except Unserializable as exc:
        raise serialization_error(exc, path) from None
    except RecursionError:
        raise recursion_error(value, path) from None


def deserialize(data: Any, *, path: str = "value") -> Any:
    """Rebuild the Python value ``serialize`` produced ``data`` from.

    Classes are found by ``module:qualname`` as the current mode's code sees them
    (``wfkit.runtime.context.current_mode``: the workflow twin's class in workflow
    mode, the user's own elsewhere), else by their registered ID; only classes of the
    project, registered ones and a list of standard types qualify, and nothing is ever
    imported to find one (``_classes``).
    Step functions come back as step proxies in workflow mode and as the
    registered step function elsewhere. An exception whose class cannot be
    rebuilt comes back as ``StepError``. ``data`` is never modified.

    Args:
        data: what ``serialize`` produced.
        path: the name of the value in error messages, e.g. ``"args"``.

    Raises:
        SerializationError: ``data`` is not something ``serialize`` produced, or
            names a class wfkit may not decode (``.type_name`` is the class as stored,
            ``.path`` where it sits: ``args[0]["items"][3]``).
        PayloadDecryptionError: ``data`` is encrypted and cannot be opened here.
    """
    if type(data) is dict and data.get(TAG) in SEALED_TAGS:
        data = open_payload(data)
    try:
        return de_value(data)
    except Undecodable as exc:
        where = path + "".join(reversed(exc.segments))
        raise SerializationError(
            f"cannot deserialize {exc.class_path} at {where}: {UntrustedClassError.REASON}",
            type_name=exc.class_path,
            path=where,
        ) from None
    except RecursionError:
        raise SerializationError("cannot deserialize: nested too deeply") from None


def serialize_call(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    closure: dict[str, Any] | None = None,
    this: Any = None,
) -> dict[str, Any]:
    """Serialize the inputs of a call: ``{"args", "kwargs", "closure", "this"}``.

    The result is itself ``<ser>`` data (a plain dict), so ``deserialize`` reads it
    too. Error paths start at ``args``, ``kwargs``, ``closure`` or ``this``
    (``args[1]["items"][3]``, ``kwargs["x"]``, ``closure["count"]``).

    Raises:
        SerializationError: as ``serialize``.
    """
    # No arguments, no keywords, no ``self``: what ``serialize`` would make of them,
    # without its calls (once per step call, on the replay's hot path).
    return {
        "args": serialize(list(args), path="args") if args else [],
        "kwargs": serialize(kwargs, path="kwargs") if kwargs else {},
        "closure": None if closure is None else serialize(closure, path="closure"),
        "this": None if this is None else serialize(this, path="this"),
    }


def deserialize_call(
    data: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any] | None, Any]:
    """Read back ``serialize_call``'s output as ``(args, kwargs, closure, this)``.

    Missing keys read as empty (``args``, ``kwargs``) or None (``closure``, ``this``).

    Raises:
        SerializationError: as ``deserialize``.
    """
    data = open_payload(data)
    if type(data) is not dict:
        raise SerializationError(
            f"cannot deserialize call inputs: expected an object, got {type(data).__name__}"
        )
    args = data.get("args", [])
    kwargs = data.get("kwargs", {})
    if (
        type(args) is list
        and type(kwargs) is dict
        and data.get("closure") is None
        and data.get("this") is None
        and TAG not in kwargs
        and PLAIN_IN.issuperset(map(type, args))
        and PLAIN_IN.issuperset(map(type, kwargs.values()))
    ):
        # Scalars only, no closure, no self (most step calls): what the general path
        # below gives, without its four ``deserialize`` calls (once per step attempt).
        return tuple(args), kwargs.copy(), None, None
    args = deserialize(data.get("args", []), path="args")
    kwargs = deserialize(data.get("kwargs", {}), path="kwargs")
    closure = deserialize(data.get("closure"), path="closure")
    this = deserialize(data.get("this"), path="this")
    return tuple(args), dict(kwargs), closure, this


def dumps(value: Any) -> str:
    """``serialize`` then JSON text (ASCII only, compact), as worlds store it."""
    return json.dumps(serialize(value), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON text written by ``dumps`` and ``deserialize`` it."""
    return deserialize(json.loads(text))


def serialize_error(exc: BaseException) -> dict[str, Any]:
    """The ErrorInfo of an exception, as stored in ``*_failed`` / ``step_retrying`` events.

    Returns:
        ``{"type": "module.QualName", "message": str(exc), "stack": the formatted
        traceback with chained causes, "value": <ser of exc> or None}``. ``value``
        is None when the exception's args or attributes cannot be serialized.
    """
    stack = "".join(traceback.format_exception(exc))
    try:
        value: Any = ser_exception(exc, with_stack=False)
    except (Unserializable, RecursionError):
        value = None
    return {
        "type": qualified_name(type(exc)),
        "message": safe_str(exc),
        "stack": stack,
        "value": value,
    }


def deserialize_error(info: dict[str, Any]) -> BaseException:
    """Rebuild the exception an ErrorInfo describes.

    With its own type when it can (builtins, wfkit errors, importable or registered
    exception classes whose args serialized), else ``StepError(type, message, stack)``.
    The remote traceback is attached as ``__wfkit_stack__`` and, when not empty,
    as a note ("Remote traceback: ...") that tracebacks print.

    Raises:
        PayloadDecryptionError: the error's message and value are encrypted with a key
            this process does not have.
    """
    info = open_error(info)
    type_name = str(info.get("type") or "")
    message = str(info.get("message") or "")
    stack = str(info.get("stack") or "")
    exc: BaseException | None = None
    value = info.get("value")
    if value is not None:
        try:
            rebuilt = deserialize(value)
        except Exception:
            rebuilt = None
        if isinstance(rebuilt, BaseException):
            exc = rebuilt
    if exc is None:
        exc = StepError(type_name, message, stack)
    if isinstance(exc, StepError) and not exc.stack:
        exc.stack = stack
    exc.__wfkit_stack__ = stack  # type: ignore[attr-defined]
    if stack:
        exc.add_note(REMOTE_NOTE + stack)
    return exc


def register_codec(
    tag: str, cls: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]
) -> None:
    """Teach the serializer a type it does not know (streams, webhook requests, ...).

    Instances of ``cls`` (and subclasses) are stored as ``{"$t": tag, "v":
    serialize(encode(value))}`` and read back as ``decode(deserialize(v))``.
    Registering a tag again replaces it.

    Raises:
        ValueError: ``tag`` is one of the built-in tags.
    """
    if tag in BUILTIN_DECODERS or tag in SEALED_TAGS:
        raise ValueError(f"codec tag {tag!r} is reserved by wfkit's serializer")
    old = CODECS.get(tag)
    if old is not None:
        CODEC_TAG_BY_TYPE.pop(old[0], None)
    CODECS[tag] = (cls, encode, decode)
    CODEC_TAG_BY_TYPE[cls] = tag
    DECODERS[tag] = functools.partial(decode_codec, decode)
    reset_encoder_cache()
