"""Standard types users pass around (issue 12): pathlib paths, OrderedDict, defaultdict,
Counter, deque, complex, and time zones other than ZoneInfo keeping their identity."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import math
import pathlib
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfkit.runtime.errors import SerializationError
from wfkit.runtime.serialization import TAG, deserialize, dumps, loads, serialize

CET = dt.timezone(dt.timedelta(hours=1), "CET")


@dataclasses.dataclass
class Holder:
    label: str
    value: Any


def same(a: Any, b: Any) -> bool:
    """Equality that checks exact types, order, NaN, maxlen, factories and time zones."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, collections.deque):
        return a.maxlen == b.maxlen and same(list(a), list(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, collections.defaultdict) and a.default_factory is not b.default_factory:
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Holder):
        return a.label == b.label and same(a.value, b.value)
    if isinstance(a, dt.datetime | dt.time):
        return a == b and a.tzinfo == b.tzinfo and _tz_name(a) == _tz_name(b)
    return bool(a == b)


def _tz_name(value: dt.datetime | dt.time) -> str | None:
    return value.tzname()


def round_trip(value: Any) -> Any:
    back = loads(dumps(value))
    assert same(value, back), (value, back)
    return back


# --- each type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pathlib.Path("/srv/data/file.txt"),
        pathlib.Path("relative/dir"),
        pathlib.PurePosixPath("/a/b"),
        pathlib.PureWindowsPath(r"C:\Users\me\file.txt"),
        pathlib.PurePath("x/y"),
    ],
)
def test_paths_keep_their_kind(path: pathlib.PurePath) -> None:
    assert type(round_trip(path)) is type(path)


def test_a_concrete_path_of_another_os_reads_back_as_its_pure_path() -> None:
    stored = {TAG: "path", "v": "C:\\x\\y", "kind": "WindowsPath"}
    assert deserialize(stored) == pathlib.PureWindowsPath("C:/x/y")
    assert type(deserialize(stored)) is pathlib.PureWindowsPath


def test_ordered_dict_keeps_order_and_type() -> None:
    value = collections.OrderedDict([("b", 1), ("a", 2), (3, "non-str key")])
    back = round_trip(value)
    assert list(back) == ["b", "a", 3]
    back.move_to_end("b")  # an OrderedDict's own method still works


@pytest.mark.parametrize("factory", [None, list, int, set, dict, collections.Counter])
def test_defaultdict_keeps_its_factory(factory: Any) -> None:
    value: collections.defaultdict[Any, Any] = collections.defaultdict(factory)
    value["seen"] = factory() if factory is not None else "x"
    back = round_trip(value)
    assert back.default_factory is factory
    if factory is not None:
        assert back["missing"] == factory()


def test_defaultdict_with_another_factory_is_a_clear_error() -> None:
    value = collections.defaultdict(lambda: 0, {"a": 1})
    with pytest.raises(SerializationError) as caught:
        serialize({"counts": value}, path="args")
    message = str(caught.value)
    assert caught.value.path == 'args["counts"]'
    assert "<lambda> is not None or one of Counter, OrderedDict, bool" in message
    assert "\n" not in message


def test_an_unknown_stored_factory_is_refused() -> None:
    with pytest.raises(SerializationError, match=r"default_factory 'os\.system'"):
        deserialize({TAG: "ddict", "factory": "os.system", "v": []})


def test_counter_and_deque() -> None:
    counter = round_trip(collections.Counter("abracadabra"))
    assert counter.most_common(1) == [("a", 5)]
    bounded = round_trip(collections.deque([1, 2, 3], maxlen=3))
    bounded.append(4)
    assert list(bounded) == [2, 3, 4]
    assert round_trip(collections.deque(["x"])).maxlen is None


@pytest.mark.parametrize(
    "number",
    [1 + 2j, complex(0.0, -0.0), complex(math.inf, -math.inf), complex(math.nan, 1), 1e300j],
)
def test_complex(number: complex) -> None:
    round_trip(number)


# --- time zones -------------------------------------------------------------------------


def test_utc_stays_the_utc_singleton() -> None:
    back = round_trip(dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC))
    assert back.tzinfo is dt.UTC


def test_a_named_fixed_offset_keeps_its_name() -> None:
    back = round_trip([dt.datetime(2026, 1, 2, tzinfo=CET), dt.time(9, 30, tzinfo=CET)])
    assert back[0].tzname() == "CET" and back[1].tzname() == "CET"
    unnamed = round_trip(dt.datetime(2026, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5))))
    assert unnamed.tzname() == "UTC-05:00"


def test_zoneinfo_still_keeps_its_key() -> None:
    back = round_trip(dt.datetime(2026, 3, 29, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    assert back.tzinfo == zoneinfo.ZoneInfo("Europe/Paris")


class Shifted(dt.tzinfo):
    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=2)

    def dst(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, d: dt.datetime | None) -> str:
        return "SHIFTED"


def test_an_unknown_tzinfo_is_a_clear_error_not_a_fixed_offset() -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=Shifted())
    with pytest.raises(SerializationError) as caught:
        serialize([Holder("h", when)], path="args")
    assert caught.value.path == "args[0].value"
    assert f"time zone {__name__}.Shifted is not supported" in str(caught.value)


def test_old_encodings_still_read_back() -> None:
    """Before these tags a named offset was stored as its bare offset: it reads as one."""
    back = deserialize({TAG: "datetime", "v": "2026-01-02T00:00:00+01:00"})
    assert back.utcoffset() == dt.timedelta(hours=1) and back.tzname() == "UTC+01:00"


# --- everything at once, nested --------------------------------------------------------------

standard_leaves = st.one_of(
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.complex_numbers(),
    st.builds(pathlib.PurePosixPath, st.text(max_size=10)),
    st.builds(pathlib.PureWindowsPath, st.text(max_size=10)),
    st.builds(pathlib.Path, st.text(max_size=10)),
    st.datetimes(
        timezones=st.sampled_from(
            [dt.UTC, CET, dt.timezone(dt.timedelta(minutes=-90), "Far West"), None]
        )
    ),
)
keys = st.one_of(st.text(max_size=5), st.integers())


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4).map(collections.OrderedDict),
        st.dictionaries(keys, st.integers(), max_size=4).map(collections.Counter),
        st.tuples(
            st.sampled_from([None, list, int, set, dict]),
            st.dictionaries(keys, children, max_size=3),
        ).map(lambda pair: collections.defaultdict(pair[0], pair[1])),
        st.tuples(st.lists(children, max_size=4), st.none() | st.integers(0, 5)).map(
            lambda pair: collections.deque(pair[0], pair[1])
        ),
        st.builds(Holder, st.text(max_size=3), children),
    )


standard_values = st.recursive(standard_leaves, _containers, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(standard_values)
def test_standard_values_round_trip_nested(value: Any) -> None:
    data = serialize(value)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert same(value, deserialize(data))
