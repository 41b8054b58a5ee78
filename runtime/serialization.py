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
    {"$t": "datetime" | "date" | "time", "v": isoformat, "tz"?: zone key, "fold"?: 1}
    {"$t": "timedelta", "v": [days, seconds, microseconds]}
    {"$t": "decimal" | "uuid", "v": str}
    {"$t": "enum", "cls": "mod:Qual", "id"?: class id, "v": <ser value>}
    {"$t": "dc" | "model", "cls": ..., "id"?: ..., "v": {field: <ser>}}  dataclass / pydantic
    {"$t": "ntuple", "cls": ..., "v": [<ser>...]}                        namedtuple
    {"$t": "obj", "cls": ..., "id"?: ..., "v": <ser of __wfkit_serialize__()>}
    {"$t": "exc", "cls": ..., "type": "mod.Qual", "args": [<ser>] | null, "msg": str,
     "attrs": {<ser>}, "stack": str, "cause": <ser exc> | null}
    {"$t": "step", "v": step id, "closure": <ser dict> | null}
    {"$t": <codec tag>, "v": <ser of encode(value)>}                      register_codec

A user dict that contains the key ``"$t"`` is stored as ``{"$t": "dict", ...}`` so
no user data is ever read as a tag. Every payload is itself ``<ser>`` data.

Alternatives rejected: pickle (unsafe, opaque in the inspector, breaks across
code versions); one wrapper per value such as ``{"type": ..., "value": ...}``
(doubles the size of plain data and slows the replay path, where most values
are plain); ``json`` hooks (``default``/``object_hook``) as the only mechanism
(they cannot tag tuples, sets or non-str keys, and worlds hand us parsed data).

Speed. ``deserialize`` is on the replay hot path: scalars are returned as they
are and containers of scalars are copied by one comprehension, without a call
per element. ``serialize`` dispatches on the exact type through a cache, so the
``isinstance`` ladder runs once per type. Paths (``args[1]["items"][3]``) are
built only when a value fails, while the error unwinds; cycles are found only
after Python's recursion limit trips, so the common path pays nothing for them.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import importlib
import json
import math
import sys
import traceback
import types
import uuid
from collections.abc import Callable
from typing import Any

from runtime import registry
from runtime.context import current_mode
from runtime.errors import SerializationError, StepError
from runtime.gen import StepProxy, step_proxy

__all__ = [
    "TAG",
    "deserialize",
    "deserialize_call",
    "deserialize_error",
    "dumps",
    "loads",
    "register_codec",
    "serialize",
    "serialize_call",
    "serialize_error",
]

TAG = "$t"
"""The marker key of every tagged value."""

_MAX_SAFE_INT = 2**53 - 1
_HINT = (
    "hint: use a dataclass, a pydantic model, or a class with "
    "__wfkit_serialize__/__wfkit_deserialize__"
)
_REMOTE_NOTE = "Remote traceback:\n"
_NoneType = type(None)
# Values that are their own JSON encoding: no call needed, in either direction
# (int and float need a range/finiteness check when serializing).
_PLAIN_OUT: frozenset[type] = frozenset({str, bool, _NoneType})
_PLAIN_IN: frozenset[type] = frozenset({str, int, float, bool, _NoneType})
_STR: frozenset[type] = frozenset({str})

Encoder = Callable[[Any], Any]


class _Unserializable(Exception):
    """Internal: a value failed; containers add path segments while it unwinds."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value  # the child the enclosing container must locate
        self.type_name = _type_name(type(value))
        self.reason = reason
        self.segments: list[str] = []  # innermost first


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
        return _ser(value)
    except _Unserializable as exc:
        raise _serialization_error(exc, path) from None
    except RecursionError:
        raise _recursion_error(value, path) from None


def deserialize(data: Any) -> Any:
    """Rebuild the Python value ``serialize`` produced ``data`` from.

    Classes are found by their registered ID for the current mode
    (``runtime.context.current_mode``), else imported by ``module:qualname``.
    Step functions come back as step proxies in workflow mode and as the
    registered step function elsewhere. An exception whose class cannot be
    rebuilt comes back as ``StepError``. ``data`` is never modified.

    Raises:
        SerializationError: ``data`` is not something ``serialize`` produced, or
            names a class that is not registered and cannot be imported.
    """
    try:
        return _de(data)
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
    return {
        "args": serialize(list(args), path="args"),
        "kwargs": serialize(kwargs, path="kwargs"),
        "closure": None if closure is None else serialize(closure, path="closure"),
        "this": serialize(this, path="this"),
    }


def deserialize_call(
    data: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any] | None, Any]:
    """Read back ``serialize_call``'s output as ``(args, kwargs, closure, this)``.

    Missing keys read as empty (``args``, ``kwargs``) or None (``closure``, ``this``).

    Raises:
        SerializationError: as ``deserialize``.
    """
    args = deserialize(data.get("args", []))
    kwargs = deserialize(data.get("kwargs", {}))
    closure = deserialize(data.get("closure"))
    this = deserialize(data.get("this"))
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
        value: Any = _ser_exception(exc, with_stack=False)
    except (_Unserializable, RecursionError):
        value = None
    return {
        "type": _type_name(type(exc)),
        "message": _safe_str(exc),
        "stack": stack,
        "value": value,
    }


def deserialize_error(info: dict[str, Any]) -> BaseException:
    """Rebuild the exception an ErrorInfo describes.

    With its own type when it can (builtins, wfkit errors, importable or registered
    exception classes whose args serialized), else ``StepError(type, message, stack)``.
    The remote traceback is attached as ``__wfkit_stack__`` and, when not empty,
    as a note ("Remote traceback: ...") that tracebacks print.
    """
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
        exc.add_note(_REMOTE_NOTE + stack)
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
    if tag in _BUILTIN_DECODERS:
        raise ValueError(f"codec tag {tag!r} is reserved by wfkit's serializer")
    old = _CODECS.get(tag)
    if old is not None:
        _CODEC_TAG_BY_TYPE.pop(old[0], None)
    _CODECS[tag] = (cls, encode, decode)
    _CODEC_TAG_BY_TYPE[cls] = tag
    _DECODERS[tag] = functools.partial(_decode_codec, decode)
    _ENCODER_CACHE.clear()


# --- encoding ----------------------------------------------------------------------


def _ser(v: Any) -> Any:
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT else _ser_big_int(v)
    if t is float:
        if v - v == 0.0 and (v != 0.0 or math.copysign(1.0, v) > 0):
            return v
        return {TAG: "float", "v": repr(v)}
    if t is list:
        return _ser_items(v)
    if t is dict:
        return _ser_dict(v)
    encoder = _ENCODER_CACHE.get(t)
    if encoder is None:
        encoder = _find_encoder(v)
        if encoder is None:
            raise _Unserializable(v, "this type is not supported")
        _ENCODER_CACHE[t] = encoder
    return encoder(v)


def _ser_items(items: Any) -> list[Any]:
    """Serialize a list/tuple/set's items; on failure, locate the failing item."""
    if _PLAIN_OUT.issuperset(map(type, items)):  # str/bool/None only: one C-level pass
        return list(items)
    try:
        # Inline checks for the common scalars: a call per element would double the cost.
        return [
            x
            if (t := type(x)) in _PLAIN_OUT
            or (t is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT)
            or (t is float and x - x == 0.0 and x != 0.0)
            else _ser(x)
            for x in items
        ]
    except _Unserializable as exc:
        for i, x in enumerate(items):
            if x is exc.value:
                exc.segments.append(f"[{i}]")
                break
        exc.value = items
        raise


def _ser_dict(d: dict[Any, Any]) -> Any:
    if TAG not in d and _STR.issuperset(map(type, d)):
        if _PLAIN_OUT.issuperset(map(type, d.values())):  # both checks run in C
            return d.copy()
        try:
            return {
                k: x
                if (t := type(x)) in _PLAIN_OUT
                or (t is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT)
                or (t is float and x - x == 0.0 and x != 0.0)
                else _ser(x)
                for k, x in d.items()
            }
        except _Unserializable as exc:
            for k, x in d.items():
                if x is exc.value:
                    exc.segments.append(f"[{json.dumps(k, ensure_ascii=False)}]")
                    break
            exc.value = d
            raise
    pairs: list[list[Any]] = []
    for k, x in d.items():
        try:
            key = _ser(k)
        except _Unserializable as exc:
            exc.segments.append(f"<key {k!r}>")
            exc.value = d
            raise
        try:
            pairs.append([key, _ser(x)])
        except _Unserializable as exc:
            exc.segments.append(f"[{k!r}]")
            exc.value = d
            raise
    return {TAG: "dict", "v": pairs}


def _ser_field(value: Any, owner: Any, segment: str) -> Any:
    """Serialize one attribute-like part of ``owner`` (a field, args, closure...)."""
    try:
        return _ser(value)
    except _Unserializable as exc:
        exc.segments.append(segment)
        exc.value = owner
        raise


def _ser_fields(values: dict[str, Any], owner: Any) -> Any:
    """Serialize ``{name: value}`` of an object; paths read ``.name``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = _ser_field(value, owner, f".{name}")
    if TAG in out:  # a field literally named "$t": keep the payload unambiguous
        return {TAG: "dict", "v": [[k, x] for k, x in out.items()]}
    return out


def _ser_big_int(v: int) -> dict[str, Any]:
    try:
        return {TAG: "int", "v": str(v)}
    except ValueError:  # beyond sys.get_int_max_str_digits(): hex has no limit
        return {TAG: "int", "x": format(v, "x")}


def _ser_tuple(v: tuple[Any, ...]) -> dict[str, Any]:
    return {TAG: "tuple", "v": _ser_items(v)}


def _ser_set(v: set[Any] | frozenset[Any]) -> dict[str, Any]:
    items = _ser_items(v)
    # Sort by JSON text so equal sets always serialize to the same bytes.
    items.sort(key=lambda x: json.dumps(x, sort_keys=True))
    return {TAG: "set" if type(v) is set else "frozenset", "v": items}


def _ser_tz(out: dict[str, Any], value: dt.datetime | dt.time) -> dict[str, Any]:
    key = getattr(value.tzinfo, "key", None)
    if isinstance(key, str):
        out["tz"] = key
    if value.fold:
        out["fold"] = 1
    return out


_SIMPLE_ENCODERS: dict[type, Encoder] = {
    tuple: _ser_tuple,
    set: _ser_set,
    frozenset: _ser_set,
    bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {TAG: "bytearray", "v": base64.b64encode(v).decode("ascii")},
    dt.datetime: lambda v: _ser_tz({TAG: "datetime", "v": v.isoformat()}, v),
    dt.date: lambda v: {TAG: "date", "v": v.isoformat()},
    dt.time: lambda v: _ser_tz({TAG: "time", "v": v.isoformat()}, v),
    dt.timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    decimal.Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
}
_ENCODER_CACHE: dict[type, Encoder] = dict(_SIMPLE_ENCODERS)
_CODECS: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}
_CODEC_TAG_BY_TYPE: dict[type, str] = {}


def _class_ref(obj: Any, *, require_importable: bool = True) -> dict[str, Any]:
    """``{"cls": "module:qualname", "id"?: registered id}`` for the class of ``obj``.

    Raises:
        _Unserializable: the class is neither registered nor importable, so it
            could never be read back (checked here, not at decode time).
    """
    cls = type(obj)
    ref: dict[str, Any] = {"cls": f"{cls.__module__}:{cls.__qualname__}"}
    class_id = registry.class_id_of(cls) or cls.__dict__.get("__wfkit_class_id__")
    if class_id:
        ref["id"] = class_id
    elif require_importable and _import_class(ref["cls"]) is not cls:
        raise _Unserializable(
            obj,
            f"class {cls.__module__}.{cls.__qualname__} is neither registered nor importable "
            "by module path (is it defined inside a function?)",
        )
    return ref


def _find_encoder(v: Any) -> Encoder | None:
    """Pick the encoder for ``type(v)``; the result is cached per type."""
    t = type(v)
    for codec_cls, tag in list(_CODEC_TAG_BY_TYPE.items()):
        if isinstance(v, codec_cls):
            return functools.partial(_encode_codec, tag, _CODECS[tag][1])
    if callable(getattr(t, "__wfkit_serialize__", None)):
        return _encode_manifest_object
    if isinstance(v, StepProxy) or isinstance(v, types.FunctionType | types.MethodType):
        return _encode_step
    if isinstance(v, BaseException):
        return functools.partial(_ser_exception, with_stack=True)
    if isinstance(v, enum.Enum):
        return _encode_enum
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _encode_dataclass
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(v, pydantic.BaseModel):
        return _encode_model
    if isinstance(v, tuple) and isinstance(getattr(t, "_fields", None), tuple):
        return _encode_namedtuple
    return None


def _encode_codec(tag: str, encode: Callable[[Any], Any], v: Any) -> dict[str, Any]:
    try:
        payload = encode(v)
    except Exception as exc:
        raise _Unserializable(v, f"codec {tag!r} failed: {exc!r}") from exc
    return {TAG: tag, "v": _ser_field(payload, v, f"<{tag} codec>")}


def _encode_manifest_object(v: Any) -> dict[str, Any]:
    out = {TAG: "obj", **_class_ref(v)}
    try:
        payload = v.__wfkit_serialize__()
    except Exception as exc:
        raise _Unserializable(v, f"__wfkit_serialize__ raised {exc!r}") from exc
    out["v"] = _ser_field(payload, v, ".__wfkit_serialize__()")
    return out


def _encode_step(v: Any) -> dict[str, Any]:
    step_id = getattr(v, "step_id", None)
    if not isinstance(step_id, str):
        raise _Unserializable(v, "only step functions can be serialized, not other callables")
    closure = v.closure_values() if isinstance(v, StepProxy) else None
    out: dict[str, Any] = {
        TAG: "step",
        "v": step_id,
        "closure": None if closure is None else _ser_field(closure, v, ".closure"),
    }
    this = getattr(v, "_this", None) if isinstance(v, StepProxy) else None
    if this is not None:
        out["this"] = _ser_field(this, v, ".__self__")
    return out


def _encode_enum(v: enum.Enum) -> dict[str, Any]:
    return {TAG: "enum", **_class_ref(v), "v": _ser_field(v.value, v, ".value")}


def _encode_dataclass(v: Any) -> dict[str, Any]:
    values = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
    return {TAG: "dc", **_class_ref(v), "v": _ser_fields(values, v)}


def _encode_model(v: Any) -> dict[str, Any]:
    cls = type(v)
    names = list(cls.model_fields)
    out: dict[str, Any] = {TAG: "model", **_class_ref(v)}
    out["v"] = _ser_fields({name: getattr(v, name) for name in names}, v)
    fields_set = v.model_fields_set
    if fields_set != set(names):
        out["set"] = sorted(fields_set)
    extra = getattr(v, "__pydantic_extra__", None)
    if extra:
        out["extra"] = _ser_field(dict(extra), v, ".model_extra")
    return out


def _encode_namedtuple(v: tuple[Any, ...]) -> dict[str, Any]:
    return {TAG: "ntuple", **_class_ref(v), "v": _ser_items(v)}


# Attributes that builtin exceptions keep outside both ``args`` and ``__dict__``.
_C_LEVEL_ATTRS: tuple[tuple[type[BaseException], tuple[str, ...]], ...] = (
    (OSError, ("filename", "filename2")),
    (ImportError, ("name", "path")),
    (NameError, ("name",)),
    (AttributeError, ("name",)),
)


def _ser_exception(exc: BaseException, *, with_stack: bool) -> dict[str, Any]:
    cls = type(exc)
    out: dict[str, Any] = {TAG: "exc", **_class_ref(exc, require_importable=False)}
    out["type"] = _type_name(cls)
    out["msg"] = _safe_str(exc)
    out["args"] = _ser_field(list(exc.args), exc, ".args")
    attrs = {k: x for k, x in vars(exc).items() if k != "__wfkit_stack__"}
    for base, names in _C_LEVEL_ATTRS:
        if isinstance(exc, base):
            attrs.update((n, getattr(exc, n)) for n in names if getattr(exc, n, None) is not None)
    notes = attrs.get("__notes__")
    if isinstance(notes, list):
        kept = [n for n in notes if not (isinstance(n, str) and n.startswith(_REMOTE_NOTE))]
        if kept:
            attrs["__notes__"] = kept
        else:
            del attrs["__notes__"]
    out["attrs"] = {k: _ser_field(x, exc, f".{k}") for k, x in attrs.items()}
    if TAG in out["attrs"]:
        out["attrs"] = {TAG: "dict", "v": [[k, x] for k, x in out["attrs"].items()]}
    if with_stack and exc.__traceback__ is not None:
        out["stack"] = "".join(traceback.format_exception(exc, chain=False))
    cause = exc.__cause__
    if cause is not None:
        try:
            out["cause"] = _ser_exception(cause, with_stack=True)
        except _Unserializable:
            # The cause's args do not serialize: keep its type, message and stack.
            stand_in = StepError(_type_name(type(cause)), _safe_str(cause))
            out["cause"] = _ser_exception(stand_in, with_stack=False)
            out["cause"]["stack"] = "".join(traceback.format_exception(cause, chain=False))
    return out


# --- decoding ----------------------------------------------------------------------


def _de(x: Any) -> Any:
    t = type(x)
    if t is dict:
        return _de_dict(x)
    if t is list:
        return _de_list(x)
    return x


def _de_list(items: list[Any]) -> list[Any]:
    if _PLAIN_IN.issuperset(map(type, items)):  # all scalars: one C-level pass, one copy
        return items.copy()
    return [i if type(i) in _PLAIN_IN else _de(i) for i in items]


def _de_dict(d: dict[str, Any]) -> Any:
    if TAG not in d:
        if _PLAIN_IN.issuperset(map(type, d.values())):
            return d.copy()
        return {k: (x if type(x) in _PLAIN_IN else _de(x)) for k, x in d.items()}
    tag = d[TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise SerializationError(
            f"cannot deserialize {tag!r}: unknown tag (written by a newer wfkit, or a codec "
            "that is not registered in this process?)",
            type_name=str(tag),
        )
    try:
        return decoder(d)
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError("cannot deserialize: nested too deeply", type_name=tag) from None
    except Exception as exc:
        raise SerializationError(
            f"cannot deserialize {tag!r} value: {exc!r}", type_name=tag
        ) from exc


def _de_items(d: dict[str, Any]) -> list[Any]:
    items = d["v"]
    if type(items) is not list:
        raise TypeError(f"expected a list payload, got {type(items).__name__}")
    return _de_list(items)


def _de_big_int(d: dict[str, Any]) -> int:
    if "x" in d:
        return int(d["x"], 16)
    return int(d["v"])


def _de_datetime(d: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(d["v"])
    if "tz" in d:
        value = value.replace(tzinfo=_zone(d["tz"]))
    return value.replace(fold=d.get("fold", 0))


def _de_time(d: dict[str, Any]) -> dt.time:
    value = dt.time.fromisoformat(d["v"])
    if "tz" in d:
        value = value.replace(tzinfo=_zone(d["tz"]))
    return value.replace(fold=d.get("fold", 0))


def _zone(key: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(key)


def _de_timedelta(d: dict[str, Any]) -> dt.timedelta:
    days, seconds, micros = d["v"]
    return dt.timedelta(days=days, seconds=seconds, microseconds=micros)


def _de_pairs(d: dict[str, Any]) -> dict[Any, Any]:
    return {_de(k): _de(x) for k, x in d["v"]}


def _de_enum(d: dict[str, Any]) -> enum.Enum:
    cls = _resolve_class(d, enum.Enum)
    return cls(_de(d["v"]))  # type: ignore[no-any-return]


def _de_dataclass(d: dict[str, Any]) -> Any:
    cls: Any = _resolve_class(d, None)
    if not hasattr(cls, "__dataclass_fields__"):  # what dataclasses.is_dataclass checks
        raise TypeError(f"{d['cls']} is not a dataclass")
    values = _de(d["v"])
    init: dict[str, Any] = {}
    late: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            (init if f.init else late)[f.name] = values[f.name]
    obj = cls(**init)
    for name, value in late.items():
        object.__setattr__(obj, name, value)
    return obj


def _de_model(d: dict[str, Any]) -> Any:
    from pydantic import BaseModel

    cls = _resolve_class(d, BaseModel)
    values = _de(d["v"])
    if "extra" in d:
        values.update(_de(d["extra"]))
    fields_set = set(d["set"]) if "set" in d else None
    return cls.model_construct(fields_set, **values)


def _de_namedtuple(d: dict[str, Any]) -> Any:
    cls = _resolve_class(d, tuple)
    return cls(*_de_items(d))


def _de_manifest_object(d: dict[str, Any]) -> Any:
    cls = _resolve_class(d, None)
    rebuild = getattr(cls, "__wfkit_deserialize__", None)
    if rebuild is None:
        raise TypeError(f"{d['cls']} has no __wfkit_deserialize__")
    return rebuild(_de(d["v"]))


def _de_step(d: dict[str, Any]) -> Any:
    step_id: str = d["v"]
    closure = _de(d.get("closure"))
    this = _de(d.get("this"))
    name = step_id.rsplit("//", 1)[-1]
    closure_fn = None if closure is None else (lambda: closure)
    if current_mode.get() != "workflow" and registry.has_step(step_id):
        entry = registry.get_step(step_id)
        fn = entry.resolve(closure)
        if entry.method and this is not None:
            return functools.partial(fn, this)
        return fn
    if this is not None:
        return StepProxy(step_id, name, closure_fn, method=True, this=this)
    return step_proxy(step_id, name, closure=closure_fn)


def _de_exception(d: dict[str, Any]) -> BaseException:
    stack = str(d.get("stack") or "")
    exc = _rebuild_exception(d)
    if exc is None:
        exc = StepError(str(d.get("type", "")), str(d.get("msg", "")), stack)
    if stack:
        exc.__wfkit_stack__ = stack  # type: ignore[attr-defined]
    cause = d.get("cause")
    if cause is not None:
        exc.__cause__ = _de(cause)
    return exc


def _rebuild_exception(d: dict[str, Any]) -> BaseException | None:
    """The exception with its own class, or None when that class cannot be rebuilt."""
    if d.get("args") is None:
        return None
    try:
        cls = _resolve_class(d, BaseException)
    except (LookupError, ImportError, TypeError, ValueError):
        return None
    args = tuple(_de(d["args"]))
    attrs = _de(d.get("attrs") or {})
    try:
        exc = cls(*args)
    except Exception:
        try:  # an __init__ whose signature differs from its args (like StepError)
            exc = cls.__new__(cls, *args)
        except Exception:
            return None
    try:
        exc.args = args
        for key, value in attrs.items():
            setattr(exc, key, value)
    except Exception:
        return None
    return exc  # type: ignore[no-any-return]


def _decode_codec(decode: Callable[[Any], Any], d: dict[str, Any]) -> Any:
    return decode(_de(d["v"]))


_BUILTIN_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "int": _de_big_int,
    "float": lambda d: float(d["v"]),
    "bytes": lambda d: base64.b64decode(d["v"], validate=True),
    "bytearray": lambda d: bytearray(base64.b64decode(d["v"], validate=True)),
    "tuple": lambda d: tuple(_de_items(d)),
    "set": lambda d: set(_de_items(d)),
    "frozenset": lambda d: frozenset(_de_items(d)),
    "dict": _de_pairs,
    "datetime": _de_datetime,
    "date": lambda d: dt.date.fromisoformat(d["v"]),
    "time": _de_time,
    "timedelta": _de_timedelta,
    "decimal": lambda d: decimal.Decimal(d["v"]),
    "uuid": lambda d: uuid.UUID(d["v"]),
    "enum": _de_enum,
    "dc": _de_dataclass,
    "model": _de_model,
    "ntuple": _de_namedtuple,
    "obj": _de_manifest_object,
    "exc": _de_exception,
    "step": _de_step,
}
_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = dict(_BUILTIN_DECODERS)


# --- classes -------------------------------------------------------------------------


def _resolve_class(d: dict[str, Any], base: type | None) -> Any:
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
        cls = _import_class(path)
    if cls is None:
        raise LookupError(
            f"class {class_id or path!r} is not registered and cannot be imported here"
        )
    if not isinstance(cls, type) or (base is not None and not issubclass(cls, base)):
        raise TypeError(f"{path!r} is not a {base.__name__ if base else 'class'}")
    return cls


@functools.lru_cache(maxsize=1024)
def _import_class(path: str) -> Any:
    """``module:qualname`` -> the object, or None (never raises, never evals)."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname or "<locals>" in qualname:
        return None
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj


# --- errors ----------------------------------------------------------------------------


def _type_name(cls: type) -> str:
    """``module.QualName`` (builtins without the module)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def _serialization_error(exc: _Unserializable, root: str) -> SerializationError:
    path = root + "".join(reversed(exc.segments))
    return SerializationError(
        f"cannot serialize {exc.type_name} at {path}: {exc.reason}; {_HINT}",
        type_name=exc.type_name,
        path=path,
    )


def _recursion_error(value: Any, root: str) -> SerializationError:
    """Explain a RecursionError: find the cycle (iteratively), else say it is too deep."""
    # Paths are kept as parent links and spelled out only for the cycle found, so a
    # very deep value costs linear time.
    links: list[tuple[int, str]] = [(-1, root)]
    stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
    on_path: set[int] = set()
    done: set[int] = set()
    while stack:
        obj, node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(obj))
            done.add(id(obj))
            continue
        if id(obj) in on_path:
            type_name = _type_name(type(obj))
            path = _spell_path(links, node)
            return SerializationError(
                f"cannot serialize {type_name} at {path}: the value contains itself (a cycle); "
                "durable values must be trees",
                type_name=type_name,
                path=path,
            )
        if id(obj) in done:
            continue
        children = _children(obj)
        if not children:
            continue
        on_path.add(id(obj))
        stack.append((obj, node, True))
        for child, segment in reversed(children):
            links.append((node, segment))
            stack.append((child, len(links) - 1, False))
    type_name = _type_name(type(value))
    return SerializationError(
        f"cannot serialize {type_name} at {root}: nested too deeply (or a cycle through "
        "__wfkit_serialize__)",
        type_name=type_name,
        path=root,
    )


def _spell_path(links: list[tuple[int, str]], node: int) -> str:
    parts: list[str] = []
    while node >= 0:
        node, segment = links[node]
        parts.append(segment)
    return "".join(reversed(parts))


def _children(obj: Any) -> list[tuple[Any, str]]:
    """The parts of a value ``serialize`` recurses into, with their path segments."""
    if isinstance(obj, dict):
        out: list[tuple[Any, str]] = []
        for k, x in obj.items():
            seg = json.dumps(k, ensure_ascii=False) if type(k) is str else repr(k)
            out.append((k, f"<key {seg}>"))
            out.append((x, f"[{seg}]"))
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [(x, f"[{i}]") for i, x in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(getattr(obj, f.name), f".{f.name}") for f in dataclasses.fields(obj)]
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        return [(getattr(obj, n), f".{n}") for n in type(obj).model_fields]
    if isinstance(obj, BaseException):
        out = [(x, f".args[{i}]") for i, x in enumerate(obj.args)]
        if obj.__cause__ is not None:
            out.append((obj.__cause__, ".__cause__"))
        return out
    return []
