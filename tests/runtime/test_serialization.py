"""wfkit.runtime.serialization: every supported type round-trips with its type, through JSON text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import json
import math
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pydantic
import pytest

from tests.e2e.wheel_project import build_project, unique_package, write_project
from wfkit.runtime.context import Mode, current_mode
from wfkit.runtime.errors import (
    FatalError,
    HookConflictError,
    RetryableError,
    SerializationError,
    StepError,
)
from wfkit.runtime.gen import StepProxy, step_proxy
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.loader import load_build
from wfkit.runtime.serialization import (
    TAG,
    deserialize,
    deserialize_call,
    deserialize_error,
    dumps,
    loads,
    register_codec,
    serialize,
    serialize_call,
    serialize_error,
)


def short_id(value: Any) -> str:
    """A readable test id, also for ints too long for repr()."""
    if type(value) is int and value.bit_length() > 1000:
        return f"int({value.bit_length()} bits)"
    return repr(value)[:40]


def through_json(value: Any) -> Any:
    """What a world does: serialize, store as JSON text, load, deserialize."""
    data = serialize(value)
    text = json.dumps(data)
    assert json.loads(text) == data  # the stored form survives JSON exactly
    json.dumps(data, allow_nan=False)  # and is strict JSON
    return deserialize(json.loads(text))


def assert_round_trip(value: Any) -> Any:
    back = through_json(value)
    assert type(back) is type(value)
    assert back == value
    return back


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Undo this module's registrations without dropping other modules' (imported) ones."""
    tables: list[dict[Any, Any]] = [
        registry._default.workflows,
        registry._default.steps,
        registry._default.classes,
        registry._class_ids,
    ]
    saved = [dict(table) for table in tables]
    yield
    for table, before in zip(tables, saved, strict=True):
        table.clear()
        table.update(before)


# --- module-level types (importable by module path) -----------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


class Perm(enum.IntFlag):
    R = 4
    W = 2


class Level(enum.StrEnum):
    LOW = "low"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Box:
    items: list[Point]
    tags: frozenset[str] = frozenset()
    computed: int = dataclasses.field(init=False, default=0)


class Order(pydantic.BaseModel):
    id: uuid.UUID
    box: Box
    when: dt.datetime
    points: list[Point] = []
    amount: decimal.Decimal = decimal.Decimal("0")


class Aliased(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    real_name: int = pydantic.Field(alias="realName")
    other: str = "x"


class WithPrivate(pydantic.BaseModel):
    name: str
    _cache: dict[str, int] = pydantic.PrivateAttr(default_factory=dict)


class Pair(NamedTuple):
    left: int
    right: Any


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code
        self.detail = detail


class Money:
    """A manifest class: serializes itself."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (
            other.cents,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.cents, self.currency))

    def __wfkit_serialize__(self) -> Any:
        return {"cents": self.cents, "currency": self.currency}

    @classmethod
    def __wfkit_deserialize__(cls, data: Any) -> Money:
        return cls(data["cents"], data["currency"])


# --- scalars and containers --------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**53 - 1,
        -(2**53 - 1),
        2**53,
        -(2**53) - 1,
        2**64 + 1,
        10**5000,  # beyond Python's int->str digit limit
        -(10**5000) - 3,
        1.5,
        0.0,
        -0.0,
        math.inf,
        -math.inf,
        1e308,
        "",
        "plain",
        "nul \0 inside",
        "\udc80 lone surrogate",
        "émoji 🎉",
        b"",
        b"\x00\x01\xff",
        bytearray(b"\x00ab"),
        [],
        [1, [2, [3, []]]],
        (),
        (1, "a", (2.5, None)),
        {"a": 1, "b": [1, 2]},
        {1: "int key", (1, 2): "tuple key", None: 0, 2.5: "f", b"k": "bytes key"},
        {TAG: "bytes", "v": "not really"},
        {"nested": {TAG: 1}},
        {frozenset({1}): {1, 2}},
        set(),
        {1, 2, 3},
        {"a", ("b", 1)},
        frozenset({1, "x"}),
    ],
    ids=short_id,
)
def test_builtin_values_round_trip_with_their_type(value: Any) -> None:
    assert_round_trip(value)


def test_negative_zero_keeps_its_sign() -> None:
    back = through_json(-0.0)
    assert math.copysign(1.0, back) == -1.0


def test_nan_round_trips() -> None:
    back = through_json(float("nan"))
    assert type(back) is float and math.isnan(back)
    assert math.isnan(through_json([float("nan")])[0])


def test_plain_values_stay_plain() -> None:
    value = {"a": [1, "x", None, True, 2.5], "b": {"c": []}}
    assert serialize(value) == value
    assert dumps(value) == '{"a":[1,"x",null,true,2.5],"b":{"c":[]}}'


def test_huge_int_is_tagged() -> None:
    assert serialize(2**53) == {TAG: "int", "v": str(2**53)}
    assert serialize(2**53 - 1) == 2**53 - 1


def test_dict_with_marker_key_is_escaped() -> None:
    data = serialize({TAG: "dict", "v": []})
    assert data[TAG] == "dict"
    assert deserialize(data) == {TAG: "dict", "v": []}


def test_dict_key_order_and_key_types_survive() -> None:
    value = {2: "b", "1": "a", (0,): "c"}
    back = through_json(value)
    assert list(back) == [2, "1", (0,)]


def test_dumps_is_ascii_json() -> None:
    text = dumps({"s": "é\0", "b": b"\0"})
    assert text.isascii()
    assert loads(text) == {"s": "é\0", "b": b"\0"}


def test_deserialize_does_not_share_or_modify_input() -> None:
    data = {"a": [1, 2], "b": {"c": 3}}
    back = deserialize(data)
    back["a"].append(3)
    back["b"]["d"] = 4
    assert data == {"a": [1, 2], "b": {"c": 3}}


# --- datetimes, decimals, uuids -----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
        dt.datetime(2024, 2, 29, 13, 14, 15, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 13, 14, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        dt.date(1, 1, 1),
        dt.time(23, 59, 59, 999999),
        dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.timedelta(days=-3, seconds=5, microseconds=7),
        dt.timedelta(0),
        decimal.Decimal("1.10"),
        decimal.Decimal("-0"),
        decimal.Decimal("1E+1000"),
        decimal.Decimal("Infinity"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ],
    ids=short_id,
)
def test_temporal_and_numeric_types_round_trip(value: Any) -> None:
    back = assert_round_trip(value)
    assert str(back) == str(value)


def test_zoneinfo_datetime_keeps_its_zone_and_fold() -> None:
    zone = ZoneInfo("America/New_York")
    value = dt.datetime(2023, 11, 5, 1, 30, fold=1, tzinfo=zone)
    back = assert_round_trip(value)
    assert back.tzinfo == zone
    assert back.fold == 1
    assert back.utcoffset() == value.utcoffset()


def test_decimal_nan_round_trips() -> None:
    assert through_json(decimal.Decimal("NaN")).is_nan()


# --- enums, dataclasses, pydantic, namedtuples -----------------------------------------


@pytest.mark.parametrize("value", [Color.RED, Color.BLUE, Perm.R | Perm.W, Level.LOW])
def test_enums_round_trip(value: enum.Enum) -> None:
    assert through_json(value) is value


def test_enum_as_dict_key() -> None:
    assert_round_trip({Level.LOW: 1, Color.RED: 2})


def test_dataclasses_round_trip_nested() -> None:
    box = Box([Point(1, 2.5), Point(-1)], frozenset({"a"}))
    box.computed = 42
    back = assert_round_trip(box)
    assert back.computed == 42
    assert type(back.items[0]) is Point
    assert type(back.tags) is frozenset


def test_nested_dataclass_in_pydantic_model_in_list() -> None:
    order = Order(
        id=uuid.uuid4(),
        box=Box([Point(1)]),
        when=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        points=[Point(2, 3.0)],
        amount=decimal.Decimal("9.99"),
    )
    back = through_json([order, {"order": order}])
    assert back == [order, {"order": order}]
    assert type(back[0]) is Order
    assert type(back[0].box) is Box
    assert type(back[0].box.items[0]) is Point
    assert type(back[1]["order"].points[0]) is Point
    assert type(back[0].amount) is decimal.Decimal


def test_pydantic_aliases_extras_and_fields_set() -> None:
    model = Aliased.model_validate({"realName": 5, "surplus": [1, (2,)]})
    back = assert_round_trip(model)
    assert back.real_name == 5
    assert back.model_extra == {"surplus": [1, (2,)]}
    assert back.model_fields_set == model.model_fields_set


def test_pydantic_private_attributes_survive() -> None:
    model = WithPrivate(name="n")
    model._cache["hits"] = 3
    back = assert_round_trip(model)
    assert back._cache == {"hits": 3}


def test_namedtuple_round_trips() -> None:
    assert_round_trip(Pair(1, Pair(2, b"x")))


def test_local_dataclass_is_rejected_when_serializing() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError) as info:
        serialize({"k": [Local(1)]})
    assert info.value.path == 'value["k"][0]'
    assert "Local" in info.value.type_name
    assert "inside a function" in str(info.value)


def test_registered_local_dataclass_round_trips_by_id() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    registry.register_class("step", "class//./x//Local", Local)
    data = serialize(Local(3))
    assert data["id"] == "class//./x//Local"
    assert deserialize(json.loads(json.dumps(data))) == Local(3)


# --- manifest classes ---------------------------------------------------------------------


def test_registered_manifest_class_round_trips() -> None:
    class P:
        def __init__(self, x: int, when: dt.date) -> None:
            self.x = x
            self.when = when

        def __wfkit_serialize__(self) -> Any:
            return {"x": self.x, "when": self.when}

        @staticmethod
        def __wfkit_deserialize__(data: Any) -> P:
            return P(data["x"], data["when"])

    registry.register_class("step", "class//./x//P", P)
    data = serialize([P(7, dt.date(2024, 5, 1))])
    assert data[0][TAG] == "obj" and data[0]["id"] == "class//./x//P"
    back = through_json([P(7, dt.date(2024, 5, 1))])
    assert type(back[0]) is P
    assert (back[0].x, back[0].when) == (7, dt.date(2024, 5, 1))


def test_manifest_class_resolves_per_mode() -> None:
    class StepP:
        def __wfkit_serialize__(self) -> Any:
            return 1

        @classmethod
        def __wfkit_deserialize__(cls, data: Any) -> Any:
            return cls()

    class WorkflowP(StepP):
        pass

    registry.register_class("step", "class//./x//P", StepP)
    registry.register_class("workflow", "class//./x//P", WorkflowP)
    data = serialize(StepP())
    token = current_mode.set("workflow")
    try:
        assert type(deserialize(data)) is WorkflowP
    finally:
        current_mode.reset(token)
    token = current_mode.set("step")
    try:
        assert type(deserialize(data)) is StepP
    finally:
        current_mode.reset(token)


def test_importable_manifest_class_without_registration() -> None:
    assert_round_trip({"price": Money(199, "EUR")})


def test_failing_wfkit_serialize_is_reported_with_path() -> None:
    class Bad:
        def __wfkit_serialize__(self) -> Any:
            raise RuntimeError("nope")

    registry.register_class("step", "class//./x//Bad", Bad)
    with pytest.raises(SerializationError, match=r"__wfkit_serialize__ raised .*nope") as info:
        serialize_call((), {"x": Bad()})
    assert info.value.path == 'kwargs["x"]'


# --- errors and paths ---------------------------------------------------------------------


def test_unsupported_type_names_type_and_path_in_args() -> None:
    with socket.socket() as sock:
        with pytest.raises(SerializationError) as info:
            serialize_call((1, {"items": [0, 1, 2, sock]}), {})
    err = info.value
    assert err.type_name == "socket.socket"
    assert err.path == 'args[1]["items"][3]'
    assert str(err).startswith('cannot serialize socket.socket at args[1]["items"][3]: ')
    assert "hint: use a dataclass, a pydantic model, or a class with" in str(err)
    assert "__wfkit_serialize__/__wfkit_deserialize__" in str(err)


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda bad: serialize_call((), {"x": bad}), 'kwargs["x"]'),
        (lambda bad: serialize_call((), {}, closure={"count": bad}), 'closure["count"]'),
        (lambda bad: serialize_call((), {}, this=bad), "this"),
        (lambda bad: serialize_call(((1, (2, bad)),), {}), "args[0][1][1]"),
        (lambda bad: serialize_call(({bad},), {}), "args[0][0]"),
        (lambda bad: serialize_call(({5: {"k": bad}},), {}), 'args[0][5]["k"]'),
        (lambda bad: serialize_call(({(bad,): 1},), {}), "args[0]<key (<object>,)>[0]"),
        (lambda bad: serialize_call((Box([]), Pair(1, bad)), {}), "args[1][1]"),
        (
            lambda bad: serialize_call(
                (
                    Order.model_construct(
                        id=uuid.UUID(int=0), box=bad, when=dt.datetime(2024, 1, 1)
                    ),
                ),
                {},
            ),
            "args[0].box",
        ),
        (lambda bad: serialize([ValueError("x", bad)]), "value[0].args[1]"),
    ],
)
def test_error_paths(call: Any, path: str) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<object>"

    bad = Opaque()
    with pytest.raises(SerializationError) as info:
        call(bad)
    assert info.value.path == path
    assert info.value.type_name.endswith("Opaque")
    assert f" at {path}: " in str(info.value)


def test_set_error_path_points_at_an_element() -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError) as info:
        serialize({Opaque()})
    assert info.value.path == "value[0]"


def test_custom_root_path() -> None:
    with pytest.raises(SerializationError) as info:
        serialize([object()], path="result")
    assert info.value.path == "result[0]"
    assert info.value.type_name == "object"


@pytest.mark.parametrize(
    "value", [lambda: 1, print, iter([]), object(), type, memoryview(b"x"), range(3)]
)
def test_unsupported_values(value: Any) -> None:
    with pytest.raises(SerializationError):
        serialize(value)


def test_self_referencing_list_is_a_cycle_error() -> None:
    value: list[Any] = [1]
    value.append({"again": value})
    with pytest.raises(SerializationError, match="cycle") as info:
        serialize_call((value,), {})
    assert info.value.path == 'args[0][1]["again"]'


def test_cycle_through_a_dataclass() -> None:
    box = Box([])
    box.items.append(box)  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="cycle") as info:
        serialize(box)
    assert info.value.path == "value.items[0]"


def test_shared_references_are_not_cycles() -> None:
    shared = [1, 2]
    assert through_json([shared, shared]) == [[1, 2], [1, 2]]


def test_deep_but_acyclic_nesting_is_a_clear_error() -> None:
    value: list[Any] = []
    for _ in range(5_000):
        value = [value]
    with pytest.raises(SerializationError, match="nested too deeply"):
        serialize(value)


def test_corrupt_payloads_raise_serialization_error() -> None:
    with pytest.raises(SerializationError, match="unknown tag"):
        deserialize({TAG: "no-such-tag", "v": 1})
    with pytest.raises(SerializationError):
        deserialize({TAG: "bytes", "v": "!!!"})
    with pytest.raises(SerializationError, match=r"no\.such\.module:Thing at value: not a class"):
        deserialize({TAG: "dc", "cls": "no.such.module:Thing", "v": {}})
    with pytest.raises(SerializationError):  # only dataclasses may be built from "dc"
        deserialize({TAG: "dc", "cls": "os:system", "v": {}})


# --- calls --------------------------------------------------------------------------------


def test_serialize_call_round_trips() -> None:
    args = (1, (2, 3), {"k": b"v"})
    kwargs = {"when": dt.date(2024, 1, 2), TAG: "marker kwarg"}
    data = serialize_call(args, kwargs, closure={"count": 3}, this=Point(1))
    assert set(data) == {"args", "kwargs", "closure", "this"}
    assert json.loads(json.dumps(data)) == data
    assert deserialize_call(json.loads(json.dumps(data))) == (args, kwargs, {"count": 3}, Point(1))


def test_serialize_call_without_closure() -> None:
    data = serialize_call((), {})
    assert data == {"args": [], "kwargs": {}, "closure": None, "this": None}
    assert deserialize_call(data) == ((), {}, None, None)


class _Int(int):
    pass


class _Str(str):
    pass


class _Dict(dict[str, Any]):
    pass


@pytest.mark.parametrize(
    "args, kwargs, closure, this",
    [
        ((), {}, None, None),
        ((1, "a", None, True, 2.5), {}, None, None),
        ((), {"x": 1, "y": "b", "z": None}, None, None),
        ((3,), {"n": -(2**53) + 1}, None, None),
        ((2**60, float("nan"), float("-inf")), {"big": 2**70}, None, None),
        (([1, 2], {"k": "v"}), {"t": (1,)}, None, None),
        ((), {TAG: "marker kwarg"}, None, None),
        ((1,), {}, {"count": 3}, None),
        ((1,), {}, None, Point(1)),
        ((b"x", dt.date(2024, 1, 2)), {}, None, None),
    ],
)
def test_deserialize_call_fast_path_equals_the_general_path(
    args: tuple[Any, ...], kwargs: dict[str, Any], closure: Any, this: Any
) -> None:
    """Scalar-only calls skip the four ``deserialize`` calls: same values, same types,
    new containers, as the general path gives."""
    data = json.loads(json.dumps(serialize_call(args, kwargs, closure=closure, this=this)))
    _same_as_the_general_path(data)


@pytest.mark.parametrize(
    "data",
    [
        # Not what JSON parsing gives, but what a caller could pass: subclasses of the
        # plain types take the general path.
        {"args": [_Int(4), _Str("s")], "kwargs": {}},
        {"args": [1], "kwargs": {"s": _Str("s"), "i": _Int(5)}},
        {"args": [1], "kwargs": _Dict(a=1)},
        {"args": (1, 2), "kwargs": {}},
        {"args": [[1], {"a": 1}], "kwargs": {"l": [2]}},
        {"args": [], "kwargs": {}, "closure": {}, "this": None},
    ],
)
def test_deserialize_call_of_other_data_equals_the_general_path(data: dict[str, Any]) -> None:
    _same_as_the_general_path(data)


def _same_as_the_general_path(data: dict[str, Any]) -> None:
    general = (
        tuple(deserialize(data.get("args", []), path="args")),
        dict(deserialize(data.get("kwargs", {}), path="kwargs")),
        deserialize(data.get("closure"), path="closure"),
        deserialize(data.get("this"), path="this"),
    )
    got = deserialize_call(data)
    assert repr(got) == repr(general)  # repr: nan is unequal to itself
    assert [type(x) for x in got[0]] == [type(x) for x in general[0]]
    assert {k: type(v) for k, v in got[1].items()} == {k: type(v) for k, v in general[1].items()}
    assert type(got[1]) is dict
    assert got[1] is not data.get("kwargs")
    got[1]["added"] = 1  # the caller may change what it got; the stored data stays
    assert "added" not in data.get("kwargs", {})


def test_deserialize_call_missing_keys_and_sealed_payloads() -> None:
    assert deserialize_call({}) == ((), {}, None, None)
    assert deserialize_call({"args": [1]}) == ((1,), {}, None, None)
    with pytest.raises(SerializationError):
        deserialize_call({"args": [{"$t": "no such tag"}]})
    with pytest.raises(SerializationError):
        deserialize_call([1])  # type: ignore[arg-type]


# --- exceptions -------------------------------------------------------------------------


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a real traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def error_round_trip(exc: BaseException) -> BaseException:
    info = serialize_error(exc)
    assert json.loads(json.dumps(info)) == info
    return deserialize_error(json.loads(json.dumps(info)))


def test_builtin_exception_round_trips_as_its_type() -> None:
    exc = raised(ValueError("bad value"))
    info = serialize_error(exc)
    assert info["type"] == "ValueError"
    assert info["message"] == "bad value"
    assert "raise exc" in info["stack"] and "ValueError: bad value" in info["stack"]
    back = error_round_trip(exc)
    assert type(back) is ValueError
    assert str(back) == "bad value"
    assert back.__wfkit_stack__ == info["stack"]  # type: ignore[attr-defined]
    assert back.__notes__ == ["Remote traceback:\n" + info["stack"]]


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("k"),
        FileNotFoundError(2, "No such file", "f.txt"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        FatalError("stop now"),
        RetryableError("later", retry_after=dt.timedelta(seconds=5)),
        HookConflictError("tok", "run_1"),
        StepError("mod.Boom", "went boom", "stack text"),
        CustomError(7, "detail"),
        ExceptionGroup("many", [ValueError("a"), KeyError("b")]),
        ImportError("no module", name="mod", path="/x.py"),
        NameError("undefined", name="foo"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_round_trip_with_type_and_attributes(exc: BaseException) -> None:
    back = error_round_trip(raised(exc))
    assert type(back) is type(exc)
    assert repr(back.args) == repr(exc.args)
    assert str(back) == str(exc)
    own = {k: v for k, v in vars(exc).items() if k != "__notes__"}
    assert {k: v for k, v in vars(back).items() if k in own} == own


class _Text(str):
    pass


class _OddError(Exception):
    def __str__(self) -> str:
        return _Text("odd message")


def test_an_exception_is_encoded_as_plain_json_whatever_its_str_and_dict_hold() -> None:
    """A ``__str__`` returning a str subclass and a non-str key put in ``__dict__`` by hand:
    what is encoded is already what JSON gives back (dicts with str keys, exact str)."""
    exc = raised(_OddError("odd"))
    exc.__dict__[1] = "not an attribute"
    exc.__dict__[_Text("label")] = "kept"
    info = serialize_error(exc)
    assert json.loads(json.dumps(info)) == info
    value = serialize(exc)
    assert type(value["msg"]) is str and value["msg"] == "odd message"
    assert all(type(k) is str for k in value["attrs"])
    back = error_round_trip(exc)
    assert type(back) is _OddError and back.label == "kept"  # type: ignore[attr-defined]


def test_retryable_error_keeps_retry_after() -> None:
    back = error_round_trip(RetryableError("later", retry_after=12.5))
    assert isinstance(back, RetryableError) and back.retry_after == 12.5


def test_unknown_exception_class_becomes_step_error() -> None:
    class Boom(Exception):
        pass

    exc = raised(Boom("kaboom"))
    back = error_round_trip(exc)
    assert type(back) is StepError
    assert back.type_name.endswith("test_unknown_exception_class_becomes_step_error.<locals>.Boom")
    assert back.message == "kaboom"
    assert "raise exc" in back.stack and "kaboom" in back.stack
    assert "Remote traceback:" in back.__notes__[0]


def test_exception_with_unserializable_args_becomes_step_error() -> None:
    exc = raised(ValueError("x", object()))
    info = serialize_error(exc)
    assert info["value"] is None
    back = deserialize_error(info)
    assert type(back) is StepError
    assert back.type_name == "ValueError"


def test_cause_chain_is_kept() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        outer = exc
    info = serialize_error(outer)
    assert "KeyError: 'inner'" in info["stack"] and "RuntimeError: outer" in info["stack"]
    back = deserialize_error(info)
    assert type(back) is RuntimeError
    assert type(back.__cause__) is KeyError
    assert back.__cause__.args == ("inner",)
    assert "inner" in back.__cause__.__wfkit_stack__  # type: ignore[attr-defined]


def test_unserializable_cause_is_kept_as_step_error() -> None:
    try:
        try:
            raise ValueError("inner", object())
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        back = error_round_trip(exc)
    assert type(back) is RuntimeError
    assert type(back.__cause__) is StepError
    assert back.__cause__.type_name == "ValueError"


def test_exception_as_a_plain_value() -> None:
    back = through_json({"errors": [ValueError("a"), FatalError("b")]})
    assert [type(e) for e in back["errors"]] == [ValueError, FatalError]


def test_reserializing_a_rebuilt_exception_does_not_pile_up_notes() -> None:
    once = error_round_trip(raised(ValueError("a")))
    twice = error_round_trip(once)
    assert len(twice.__notes__) == 1


def test_deserialize_error_without_value() -> None:
    back = deserialize_error({"type": "x.Y", "message": "m", "stack": "", "value": None})
    assert type(back) is StepError
    assert (back.type_name, back.message) == ("x.Y", "m")
    assert not getattr(back, "__notes__", None)


# --- step functions ----------------------------------------------------------------------


def add_one(x: int) -> int:
    return x + 1


def make_counter(count: int) -> Any:
    def counter() -> int:
        return count

    return counter


def test_step_function_round_trips_per_mode() -> None:
    registry.register_step("step//./m//add_one", add_one)
    add_one.step_id = "step//./m//add_one"  # type: ignore[attr-defined]
    try:
        data = serialize({"fn": add_one})
        assert data["fn"] == {TAG: "step", "v": "step//./m//add_one", "closure": None}
        assert deserialize(data)["fn"] is add_one  # client mode: the registered function
        token = current_mode.set("step")
        try:
            assert deserialize(data)["fn"] is add_one
        finally:
            current_mode.reset(token)
        token = current_mode.set("workflow")
        try:
            proxy = deserialize(data)["fn"]
        finally:
            current_mode.reset(token)
        assert isinstance(proxy, StepProxy)
        assert proxy.step_id == "step//./m//add_one"
        assert proxy.__name__ == "add_one"
    finally:
        del add_one.step_id  # type: ignore[attr-defined]


def test_step_proxy_with_closure_round_trips() -> None:
    registry.register_step_factory("step//./m//outer/counter", make_counter)
    proxy = step_proxy("step//./m//outer/counter", "outer.counter", closure=lambda: {"count": 5})
    data = serialize(proxy)
    assert data == {TAG: "step", "v": "step//./m//outer/counter", "closure": {"count": 5}}
    token = current_mode.set("workflow")
    try:
        back = through_json(proxy)
    finally:
        current_mode.reset(token)
    assert isinstance(back, StepProxy)
    assert back.closure_values() == {"count": 5}
    token = current_mode.set("step")
    try:
        fn = through_json(proxy)
    finally:
        current_mode.reset(token)
    assert fn() == 5


def test_unregistered_step_falls_back_to_proxy() -> None:
    proxy = step_proxy("step//./m//gone", "gone")
    back = through_json(proxy)
    assert isinstance(back, StepProxy) and back.step_id == "step//./m//gone"


# --- codecs ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Wallet:
    owner: str

    def pay(self, cents: int) -> str:
        return f"{self.owner}:{cents}"


class Handle:
    def __init__(self, name: str) -> None:
        self.name = name


def test_register_codec() -> None:
    register_codec("test-handle", Handle, lambda h: {"name": h.name}, lambda d: Handle(d["name"]))
    data = serialize([Handle("s1")])
    assert data == [{TAG: "test-handle", "v": {"name": "s1"}}]
    back = through_json([Handle("s1")])
    assert type(back[0]) is Handle and back[0].name == "s1"


def test_register_codec_keeps_builtin_encoders() -> None:
    register_codec("test-handle-2", Handle, lambda h: h.name, Handle)
    assert_round_trip((1, {2}, b"x", dt.date(2024, 1, 1)))


def test_method_step_keeps_its_instance() -> None:
    registry.register_step("step//./m//Wallet#pay", Wallet.pay, method=True)
    Wallet.pay.step_id = "step//./m//Wallet#pay"  # type: ignore[attr-defined]
    try:
        data = serialize(Wallet("ann").pay)
        assert data["this"][TAG] == "dc"
        token = current_mode.set("step")
        try:
            assert through_json(Wallet("ann").pay)(5) == "ann:5"
        finally:
            current_mode.reset(token)
        token = current_mode.set("workflow")
        try:
            proxy = through_json(Wallet("ann").pay)
        finally:
            current_mode.reset(token)
        assert isinstance(proxy, StepProxy) and proxy.step_id == "step//./m//Wallet#pay"
    finally:
        del Wallet.pay.step_id  # type: ignore[attr-defined]


def test_ordinary_methods_are_not_serializable() -> None:
    with pytest.raises(SerializationError, match="only step functions"):
        serialize(Point(1).__repr__)


def test_register_codec_rejects_builtin_tags() -> None:
    with pytest.raises(ValueError):
        register_codec("bytes", Handle, lambda h: h, lambda d: d)


def test_public_api_is_pinned() -> None:
    import wfkit.runtime.serialization

    assert sorted(wfkit.runtime.serialization.__all__) == [
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


# --- a loaded build: one class per name on each side of a boundary -------------------------


@dataclasses.dataclass
class App:
    """A project built and loaded into this process: the user's modules and the workflow twins."""

    package: str
    models: ModuleType
    jobs: ModuleType
    workflow_models: ModuleType


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    package = unique_package()
    root = write_project(tmp_path / "project", package)
    build = build_project(root)
    monkeypatch.syspath_prepend(str(root))
    load_build(build, root=root)
    return App(
        package,
        importlib.import_module(f"{package}.models"),
        importlib.import_module(f"{package}.jobs"),
        sys.modules[f"__wfkit_workflow__.{package}.models"],
    )


def decoded_in(mode: Mode, data: Any) -> Any:
    token = current_mode.set(mode)
    try:
        return deserialize(json.loads(json.dumps(data)))
    finally:
        current_mode.reset(token)


def test_a_value_names_the_users_class_and_each_side_gets_its_own(app: App) -> None:
    for name, make in (
        ("Parcel", lambda cls: cls("a", 1)),
        ("Quote", lambda cls: cls(label="q", cents=2)),
        ("Money", lambda cls: cls(3)),
    ):
        users, twins = getattr(app.models, name), getattr(app.workflow_models, name)
        assert users is not twins
        # Made in workflow code or in step/client code: stored the same way.
        for value in (make(twins), make(users)):
            data = serialize(value)
            assert data["cls"] == f"{app.package}.models:{name}", name
            assert data["id"] == f"class//./{app.package}/models//{name}", name
            assert type(decoded_in("workflow", data)) is twins, name
            assert type(decoded_in("step", data)) is users, name
            assert type(decoded_in("client", data)) is users, name


def test_an_exception_of_a_module_with_twins_keeps_its_identity(app: App) -> None:
    raised = app.workflow_models.Overweight("big", 1000)
    info = serialize_error(raised)
    assert info["type"] == f"{app.package}.models.Overweight"
    assert info["value"]["cls"] == f"{app.package}.models:Overweight"
    for mode, expected in (
        ("workflow", app.workflow_models.Overweight),
        ("step", app.models.Overweight),
        ("client", app.models.Overweight),
    ):
        token = current_mode.set(mode)
        try:
            rebuilt = deserialize_error(json.loads(json.dumps(info)))
        finally:
            current_mode.reset(token)
        assert type(rebuilt) is expected, mode
        assert (rebuilt.label, rebuilt.weight) == ("big", 1000)  # type: ignore[attr-defined]


def test_a_payload_naming_a_twin_module_reads_as_the_users_class(app: App) -> None:
    """What wfkit wrote before class names were the user's: a step twin's module."""
    stored = {
        TAG: "dc",
        "cls": f"__wfkit_step__.{app.package}.models:Parcel",
        "v": {"label": "a", "weight": 1},
    }
    assert decoded_in("client", stored) == app.models.Parcel("a", 1)
    assert type(decoded_in("client", stored)) is app.models.Parcel
    assert type(decoded_in("workflow", stored)) is app.workflow_models.Parcel


def test_the_users_step_functions_serialize_by_their_manifest_id(app: App) -> None:
    weigh_id = f"step//./{app.package}/models//weigh"
    assert serialize(app.models.weigh) == {TAG: "step", "v": weigh_id, "closure": None}
    bound = serialize(app.models.Parcel("a", 1).heavier)
    assert bound["v"] == f"step//./{app.package}/models//Parcel#heavier"
    assert bound["this"]["cls"] == f"{app.package}.models:Parcel"
    proxy = decoded_in("workflow", serialize(app.models.weigh))
    assert isinstance(proxy, StepProxy) and proxy.step_id == weigh_id
    with pytest.raises(SerializationError) as info:
        serialize_call((app.jobs.kinds,), {})
    assert info.value.path == "args[0]"
    assert "only step functions can be serialized" in str(info.value)
    assert "python -m wfbuild build" in str(info.value)
