"""``<ser>`` data -> Python values: plain data is copied in C, tags dispatch to decoders."""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import json
import os
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.errors import SerializationError, StepError
from wfkit.runtime.gen import StepProxy, step_proxy
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.resolve import step_function_for
from wfkit.runtime.serialization._classes import UntrustedClassError, resolve_class
from wfkit.runtime.serialization._common import DEFAULT_FACTORIES, PATH_KINDS, PLAIN_IN, TAG

# --- decoding ----------------------------------------------------------------------


class Undecodable(Exception):
    """Internal: a value names a class wfkit may not decode; containers add path segments
    while it unwinds (``deserialize`` spells the path and raises ``SerializationError``).

    Attributes:
        node: the stored data the enclosing container must locate.
        class_path: the class as the value names it.
        segments: path segments, innermost first.
    """

    def __init__(self, node: Any, error: UntrustedClassError) -> None:
        super().__init__(str(error))
        self.node = node
        self.class_path = error.class_path
        self.segments: list[str] = []

    def passing(self, container: Any) -> Undecodable:
        """Note where ``node`` sits in ``container``, which becomes the node."""
        if (
            type(container) is dict
            and container.get(TAG) in _FIELD_TAGS
            and container.get("v") is self.node
            and self.segments
            and self.segments[-1].startswith('["')
        ):
            # The fields dict spelled the field as a key: a dataclass's reads ``.name``.
            self.segments[-1] = "." + json.loads(self.segments[-1][1:-1])
        else:
            self.segments.append(_segment(container, self.node))
        self.node = container
        return self


def de_value(x: Any) -> Any:
    """Decode one ``<ser>`` value; never modifies ``x``, always returns new containers."""
    t = type(x)
    if t is dict:
        return _de_dict(x)
    if t is list:
        return _de_list(x)
    return x


def _de_list(items: list[Any]) -> list[Any]:
    if PLAIN_IN.issuperset(map(type, items)):  # all scalars: one C-level pass, one copy
        return items.copy()
    try:
        return [i if type(i) in PLAIN_IN else de_value(i) for i in items]
    except Undecodable as exc:
        raise exc.passing(items) from None


def _de_dict(d: dict[str, Any]) -> Any:
    if TAG not in d:
        if PLAIN_IN.issuperset(map(type, d.values())):
            return d.copy()
        try:
            return {k: (x if type(x) in PLAIN_IN else de_value(x)) for k, x in d.items()}
        except Undecodable as exc:
            raise exc.passing(d) from None
    tag = d[TAG]
    decoder = DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise SerializationError(
            f"cannot deserialize {tag!r}: unknown tag (written by a newer wfkit, or a codec "
            "that is not registered in this process?)",
            type_name=str(tag),
        )
    try:
        return decoder(d)
    except Undecodable as exc:
        raise exc.passing(d) from None
    except UntrustedClassError as exc:
        raise Undecodable(d, exc) from None
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
    elif "tzname" in d:
        value = value.replace(tzinfo=_named_offset(value.utcoffset(), d["tzname"]))
    return value.replace(fold=d.get("fold", 0))


def _de_time(d: dict[str, Any]) -> dt.time:
    value = dt.time.fromisoformat(d["v"])
    if "tz" in d:
        value = value.replace(tzinfo=_zone(d["tz"]))
    elif "tzname" in d:
        value = value.replace(tzinfo=_named_offset(value.utcoffset(), d["tzname"]))
    return value.replace(fold=d.get("fold", 0))


def _named_offset(offset: dt.timedelta | None, name: Any) -> dt.timezone:
    if offset is None or type(name) is not str:
        raise ValueError("a time zone name needs an offset in the ISO text")
    return dt.timezone(offset, name)


def _zone(key: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(key)


def _de_timedelta(d: dict[str, Any]) -> dt.timedelta:
    days, seconds, micros = d["v"]
    return dt.timedelta(days=days, seconds=seconds, microseconds=micros)


def _de_pairs(d: dict[str, Any]) -> dict[Any, Any]:
    return {de_value(k): de_value(x) for k, x in d["v"]}


def _de_defaultdict(d: dict[str, Any]) -> collections.defaultdict[Any, Any]:
    name = d.get("factory")
    if name is not None and (type(name) is not str or name not in DEFAULT_FACTORIES):
        raise ValueError(
            f"default_factory {name!r} is not None or one of {', '.join(DEFAULT_FACTORIES)}"
        )
    value: collections.defaultdict[Any, Any] = collections.defaultdict(
        None if name is None else DEFAULT_FACTORIES[name]
    )
    for k, x in d["v"]:
        value[de_value(k)] = de_value(x)
    return value


def _de_deque(d: dict[str, Any]) -> collections.deque[Any]:
    maxlen = d.get("maxlen")
    if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
        raise ValueError(f"maxlen {maxlen!r} is not a non-negative int")
    return collections.deque(_de_items(d), maxlen)


def _de_complex(d: dict[str, Any]) -> complex:
    real, imag = (de_value(part) for part in d["v"])
    if type(real) is not float or type(imag) is not float:
        raise TypeError("the parts of a complex are floats")
    return complex(real, imag)


def _de_path(d: dict[str, Any]) -> pathlib.PurePath:
    """A path as its kind; a concrete path of the other OS comes back as that OS's pure path
    (a ``WindowsPath`` cannot exist on POSIX, nor a ``PosixPath`` on Windows)."""
    cls = PATH_KINDS.get(d.get("kind", ""))
    if cls is None or type(d["v"]) is not str:
        raise ValueError(f"unknown path kind {d.get('kind')!r}")
    if cls is pathlib.WindowsPath and os.name != "nt":
        cls = pathlib.PureWindowsPath
    elif cls is pathlib.PosixPath and os.name == "nt":
        cls = pathlib.PurePosixPath
    return cls(d["v"])


def _de_enum(d: dict[str, Any]) -> enum.Enum:
    cls = resolve_class(d, enum.Enum)
    return cls(de_value(d["v"]))  # type: ignore[no-any-return]


def _de_dataclass(d: dict[str, Any]) -> Any:
    cls: Any = resolve_class(d, None)
    if not hasattr(cls, "__dataclass_fields__"):  # what dataclasses.is_dataclass checks
        raise TypeError(f"{d['cls']} is not a dataclass")
    values = de_value(d["v"])
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

    cls = resolve_class(d, BaseModel)
    values = de_value(d["v"])
    if "extra" in d:
        values.update(de_value(d["extra"]))
    fields_set = set(d["set"]) if "set" in d else None
    model = cls.model_construct(fields_set, **values)
    if "private" in d:
        private = {**(model.__pydantic_private__ or {}), **de_value(d["private"])}
        object.__setattr__(model, "__pydantic_private__", private)
    return model


def _de_namedtuple(d: dict[str, Any]) -> Any:
    cls = resolve_class(d, tuple)
    return cls(*_de_items(d))


def _de_manifest_object(d: dict[str, Any]) -> Any:
    cls = resolve_class(d, None)
    rebuild = getattr(cls, "__wfkit_deserialize__", None)
    if rebuild is None:
        raise TypeError(f"{d['cls']} has no __wfkit_deserialize__")
    return rebuild(de_value(d["v"]))


def _de_step(d: dict[str, Any]) -> Any:
    """A step function: a step proxy in workflow mode; elsewhere the registered step
    function (in a worker) or the user's own function (in a client that loaded no build)."""
    step_id: str = d["v"]
    closure = de_value(d.get("closure"))
    this = de_value(d.get("this"))
    name = step_id.rsplit("//", 1)[-1]
    closure_fn = None if closure is None else (lambda: closure)
    if current_mode.get() != "workflow":
        fn: Any = None
        method = False
        if registry.has_step(step_id):
            entry = registry.get_step(step_id)
            fn, method = entry.resolve(closure), entry.method
        elif closure is None:
            fn, method = step_function_for(step_id), "#" in name
        if fn is not None:
            return functools.partial(fn, this) if method and this is not None else fn
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
        exc.__cause__ = de_value(cause)
    return exc


def _rebuild_exception(d: dict[str, Any]) -> BaseException | None:
    """The exception with its own class, or None when that class cannot be rebuilt."""
    if d.get("args") is None:
        return None
    try:
        cls = resolve_class(d, BaseException)
    except (LookupError, ImportError, TypeError, ValueError):
        return None
    args = tuple(de_value(d["args"]))
    attrs = de_value(d.get("attrs") or {})
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


_PAIR_TAGS = frozenset({"dict", "odict", "ddict", "counter"})
_FIELD_TAGS = frozenset({"dc", "model"})


def _segment(container: Any, child: Any) -> str:
    """How an error path spells where ``child`` (stored data) sits in ``container``:
    ``[2]``, ``["name"]``, ``.field``, ``.args[0]``... ("" when it cannot tell)."""
    if type(container) is list:
        return next((f"[{i}]" for i, x in enumerate(container) if x is child), "")
    if type(container) is not dict:
        return ""
    tag = container.get(TAG)
    if tag is None:
        return next((f"[{_key_text(k)}]" for k, x in container.items() if x is child), "")
    for key, part in container.items():
        if key == TAG:
            continue
        name = "" if key == "v" else f".{key}"
        if part is child:
            return name
        if type(part) is list:
            for i, item in enumerate(part):
                if item is child:
                    return f"{name}[{i}]"
                if tag in _PAIR_TAGS and type(item) is list and len(item) == 2:
                    if item[0] is child:
                        return f"<key {_key_text(item[0])}>"
                    if item[1] is child:
                        return f"[{_key_text(item[0])}]"
        elif type(part) is dict:
            for field_name, item in part.items():
                if item is child:
                    if tag in _FIELD_TAGS or key == "attrs":
                        return f".{field_name}"
                    return f"{name}[{_key_text(field_name)}]"
    return ""


def _key_text(key: Any) -> str:
    return json.dumps(key) if type(key) in PLAIN_IN else "<key>"


def decode_codec(decode: Callable[[Any], Any], d: dict[str, Any]) -> Any:
    """The decoder of a ``register_codec`` tag: ``decode(deserialize(payload))``."""
    return decode(de_value(d["v"]))


BUILTIN_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
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
    "complex": _de_complex,
    "path": _de_path,
    "odict": lambda d: collections.OrderedDict(_de_pairs(d)),
    "ddict": _de_defaultdict,
    "counter": lambda d: collections.Counter(_de_pairs(d)),
    "deque": _de_deque,
    "enum": _de_enum,
    "dc": _de_dataclass,
    "model": _de_model,
    "ntuple": _de_namedtuple,
    "obj": _de_manifest_object,
    "exc": _de_exception,
    "step": _de_step,
}
DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = dict(BUILTIN_DECODERS)
