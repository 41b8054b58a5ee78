"""Python values -> ``<ser>`` data: dispatch per exact type, paths built only on failure."""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import json
import math
import pathlib
import sys
import traceback
import types
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from wfkit.runtime.errors import SerializationError, StepError
from wfkit.runtime.gen import StepProxy
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.resolve import step_id_for
from wfkit.runtime.serialization._common import (
    DEFAULT_FACTORIES,
    HINT,
    MAX_SAFE_INT,
    PATH_KINDS,
    PLAIN_OUT,
    REMOTE_NOTE,
    STR,
    TAG,
    Encoder,
    class_path,
    import_class,
    qualified_name,
    safe_str,
)


class Unserializable(Exception):
    """Internal: a value failed; containers add path segments while it unwinds."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value  # the child the enclosing container must locate
        self.type_name = qualified_name(type(value))
        self.reason = reason
        self.segments: list[str] = []  # innermost first


# --- encoding ----------------------------------------------------------------------


def ser_value(v: Any) -> Any:
    """Encode one value (see the package docstring); raises ``Unserializable``."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if -MAX_SAFE_INT <= v <= MAX_SAFE_INT else _ser_big_int(v)
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
            raise Unserializable(v, "this type is not supported")
        _ENCODER_CACHE[t] = encoder
    return encoder(v)


def _ser_items(items: Any) -> list[Any]:
    """Serialize a list/tuple/set's items; on failure, locate the failing item."""
    if PLAIN_OUT.issuperset(map(type, items)):  # str/bool/None only: one C-level pass
        return list(items)
    try:
        # Inline checks for the common scalars: a call per element would double the cost.
        return [
            x
            if (t := type(x)) in PLAIN_OUT
            or (t is int and -MAX_SAFE_INT <= x <= MAX_SAFE_INT)
            or (t is float and x - x == 0.0 and x != 0.0)
            else ser_value(x)
            for x in items
        ]
    except Unserializable as exc:
        for i, x in enumerate(items):
            if x is exc.value:
                exc.segments.append(f"[{i}]")
                break
        exc.value = items
        raise


def _ser_dict(d: dict[Any, Any]) -> Any:
    if TAG not in d and STR.issuperset(map(type, d)):
        if PLAIN_OUT.issuperset(map(type, d.values())):  # both checks run in C
            return d.copy()
        try:
            return {
                k: x
                if (t := type(x)) in PLAIN_OUT
                or (t is int and -MAX_SAFE_INT <= x <= MAX_SAFE_INT)
                or (t is float and x - x == 0.0 and x != 0.0)
                else ser_value(x)
                for k, x in d.items()
            }
        except Unserializable as exc:
            for k, x in d.items():
                if x is exc.value:
                    exc.segments.append(f"[{key_text(k)}]")
                    break
            exc.value = d
            raise
    return {TAG: "dict", "v": _ser_pairs(d)}


def _ser_pairs(d: Mapping[Any, Any]) -> list[list[Any]]:
    """``[[<ser key>, <ser value>]...]`` in ``d``'s order; on failure, locate the item."""
    pairs: list[list[Any]] = []
    for k, x in d.items():
        try:
            key = ser_value(k)
        except Unserializable as exc:
            exc.segments.append(f"<key {key_text(k)}>")
            exc.value = d
            raise
        try:
            pairs.append([key, ser_value(x)])
        except Unserializable as exc:
            exc.segments.append(f"[{key_text(k)}]")
            exc.value = d
            raise
    return pairs


def key_text(key: Any) -> str:
    """A dict key as error paths spell it: ``"name"`` for str keys, ``repr`` otherwise."""
    return json.dumps(key, ensure_ascii=False) if type(key) is str else repr(key)


def _ser_field(value: Any, owner: Any, segment: str) -> Any:
    """Serialize one attribute-like part of ``owner`` (a field, args, closure...)."""
    try:
        return ser_value(value)
    except Unserializable as exc:
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
    """Add what the ISO text loses: a ``ZoneInfo``'s key, a ``timezone``'s own name, fold.

    Raises:
        Unserializable: another kind of tzinfo (its rules cannot be stored), or a
            ``ZoneInfo`` without a key.
    """
    tz = value.tzinfo
    if tz is None:
        pass
    elif isinstance(tz, zoneinfo.ZoneInfo):
        if not isinstance(tz.key, str):
            raise Unserializable(value, "its ZoneInfo has no key (made from a file)")
        out["tz"] = tz.key
    elif type(tz) is dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        if name != dt.timezone(offset).tzname(None):  # named: timezone(offset, "CET")
            out["tzname"] = name
    else:
        raise Unserializable(
            value,
            f"its time zone {qualified_name(type(tz))} is not supported (use "
            "zoneinfo.ZoneInfo or datetime.timezone)",
        )
    if value.fold:
        out["fold"] = 1
    return out


_DEFAULT_FACTORIES: dict[Any, str] = {
    factory: name for name, factory in DEFAULT_FACTORIES.items() if factory is not None
}


def _ser_defaultdict(v: collections.defaultdict[Any, Any]) -> dict[str, Any]:
    factory = v.default_factory
    name = None if factory is None else _DEFAULT_FACTORIES.get(factory)
    if factory is not None and name is None:
        raise Unserializable(
            v,
            f"its default_factory {getattr(factory, '__qualname__', repr(factory))} is not "
            f"None or one of {', '.join(sorted(_DEFAULT_FACTORIES.values()))}",
        )
    return {TAG: "ddict", "factory": name, "v": _ser_pairs(v)}


def _ser_deque(v: collections.deque[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "deque", "v": _ser_items(v)}
    if v.maxlen is not None:
        out["maxlen"] = v.maxlen
    return out


def _ser_complex(v: complex) -> dict[str, Any]:
    return {TAG: "complex", "v": [ser_value(v.real), ser_value(v.imag)]}


def _ser_path(v: pathlib.PurePath) -> dict[str, Any]:
    return {TAG: "path", "v": str(v), "kind": type(v).__name__}


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
    complex: _ser_complex,
    collections.OrderedDict: lambda v: {TAG: "odict", "v": _ser_pairs(v)},
    collections.Counter: lambda v: {TAG: "counter", "v": _ser_pairs(v)},
    collections.defaultdict: _ser_defaultdict,
    collections.deque: _ser_deque,
    **{kind: _ser_path for kind in PATH_KINDS.values()},
}
_ENCODER_CACHE: dict[type, Encoder] = dict(_SIMPLE_ENCODERS)
CODECS: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}
CODEC_TAG_BY_TYPE: dict[type, str] = {}


def reset_encoder_cache() -> None:
    """Forget the per-type choices (a codec was registered), keeping the built-in ones."""
    _ENCODER_CACHE.clear()
    _ENCODER_CACHE.update(_SIMPLE_ENCODERS)


def _class_ref(obj: Any, *, require_importable: bool = True) -> dict[str, Any]:
    """``{"cls": "module:qualname", "id"?: registered id}`` for the class of ``obj``.

    The path names the user's class even when ``obj`` is an instance of a generated
    twin's class (see ``wfkit.runtime.loading.twins``).

    Raises:
        Unserializable: the class is neither registered nor importable, so it
            could never be read back (checked here, not at decode time).
    """
    cls: type = type(obj)
    ref: dict[str, Any] = {"cls": class_path(cls)}
    class_id = registry.class_id_of(cls) or cls.__dict__.get("__wfkit_class_id__")
    if class_id:
        ref["id"] = class_id
    elif require_importable and not _readable_by_path(cls, ref["cls"]):
        raise Unserializable(
            obj,
            f"class {qualified_name(cls)} is neither registered nor importable "
            "by module path (is it defined inside a function?)",
        )
    return ref


def _readable_by_path(cls: type, path: str) -> bool:
    """Whether the class ``path`` names can be imported to read ``cls``'s values back."""
    if import_class(f"{cls.__module__}:{cls.__qualname__}") is cls:
        return True
    # A twin's class (its module is generated): the user's class of the same name reads it.
    return path != f"{cls.__module__}:{cls.__qualname__}" and isinstance(import_class(path), type)


def _find_encoder(v: Any) -> Encoder | None:
    """Pick the encoder for ``type(v)``; the result is cached per type."""
    t = type(v)
    for codec_cls, tag in list(CODEC_TAG_BY_TYPE.items()):
        if isinstance(v, codec_cls):
            return functools.partial(_encode_codec, tag, CODECS[tag][1])
    if callable(getattr(t, "__wfkit_serialize__", None)):
        return _encode_manifest_object
    if isinstance(v, StepProxy) or isinstance(v, types.FunctionType | types.MethodType):
        return _encode_step
    if isinstance(v, BaseException):
        return functools.partial(ser_exception, with_stack=True)
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
        raise Unserializable(v, f"codec {tag!r} failed: {exc!r}") from exc
    return {TAG: tag, "v": _ser_field(payload, v, f"<{tag} codec>")}


def _encode_manifest_object(v: Any) -> dict[str, Any]:
    out = {TAG: "obj", **_class_ref(v)}
    try:
        payload = v.__wfkit_serialize__()
    except Exception as exc:
        raise Unserializable(v, f"__wfkit_serialize__ raised {exc!r}") from exc
    out["v"] = _ser_field(payload, v, ".__wfkit_serialize__()")
    return out


def _encode_step(v: Any) -> dict[str, Any]:
    step_id = step_id_for(v)
    if step_id is None:
        raise Unserializable(
            v,
            "only step functions can be serialized, not other callables (a function marked "
            '"use step" must be in the build: `python -m wfbuild build`)',
        )
    closure = v.closure_values() if isinstance(v, StepProxy) else None
    out: dict[str, Any] = {
        TAG: "step",
        "v": step_id,
        "closure": None if closure is None else _ser_field(closure, v, ".closure"),
    }
    if isinstance(v, StepProxy):
        this = getattr(v, "_this", None)  # a method step bound to an instance
    elif isinstance(v, types.MethodType) and not isinstance(v.__self__, type):
        this = v.__self__  # an instance method step; a class method's class is not data
    else:
        this = None
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
    private = getattr(v, "__pydantic_private__", None)
    if private:
        out["private"] = _ser_field(dict(private), v, ".__pydantic_private__")
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


def ser_exception(exc: BaseException, *, with_stack: bool) -> dict[str, Any]:
    """Encode an exception: class, message, args, ``__dict__`` (and the builtin attributes
    kept outside it), its own traceback text when ``with_stack``, and its ``__cause__``.

    Raises:
        Unserializable: an arg or attribute cannot be serialized (a cause that
            cannot is kept as a ``StepError`` stand-in instead).
    """
    cls = type(exc)
    out: dict[str, Any] = {TAG: "exc", **_class_ref(exc, require_importable=False)}
    out["type"] = qualified_name(cls)
    out["msg"] = safe_str(exc)
    out["args"] = _ser_field(list(exc.args), exc, ".args")
    # Only names ``setattr`` can give back: a key put in ``__dict__`` by hand that is
    # not a str is no attribute (and would not stay what it is through JSON).
    attrs = {
        str.__str__(k): x
        for k, x in vars(exc).items()
        if isinstance(k, str) and k != "__wfkit_stack__"
    }
    for base, names in _C_LEVEL_ATTRS:
        if isinstance(exc, base):
            attrs.update((n, getattr(exc, n)) for n in names if getattr(exc, n, None) is not None)
    notes = attrs.get("__notes__")
    if isinstance(notes, list):
        kept = [n for n in notes if not (isinstance(n, str) and n.startswith(REMOTE_NOTE))]
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
            out["cause"] = ser_exception(cause, with_stack=True)
        except Unserializable:
            # The cause's args do not serialize: keep its type, message and stack.
            stand_in = StepError(qualified_name(type(cause)), safe_str(cause))
            out["cause"] = ser_exception(stand_in, with_stack=False)
            out["cause"]["stack"] = "".join(traceback.format_exception(cause, chain=False))
    return out


def serialization_error(exc: Unserializable, root: str) -> SerializationError:
    """The public error for a failed value, its path spelled from ``root``."""
    path = root + "".join(reversed(exc.segments))
    return SerializationError(
        f"cannot serialize {exc.type_name} at {path}: {exc.reason}; {HINT}",
        type_name=exc.type_name,
        path=path,
    )
