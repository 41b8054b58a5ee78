"""Property test: random nested values of every supported type survive serialize -> JSON -> deserialize."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wfkit.runtime.serialization import deserialize, serialize


class Shade(enum.Enum):
    LIGHT = 1
    DARK = "dark"


@dataclasses.dataclass(frozen=True)
class Pixel:
    x: int
    shade: Shade
    label: Any = None


def is_json_data(data: Any) -> bool:
    """Only the types JSON has, with str keys and finite floats."""
    if data is None or type(data) in (str, bool, int):
        return True
    if type(data) is float:
        return math.isfinite(data)
    if type(data) is list:
        return all(is_json_data(x) for x in data)
    if type(data) is dict:
        return all(type(k) is str and is_json_data(v) for k, v in data.items())
    return False


def same(a: Any, b: Any) -> bool:
    """Equality that also checks types, NaN, the sign of zero, key order and time zones."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
        )
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime | dt.time):
        return a == b and str(a) == str(b) and a.tzinfo == b.tzinfo and a.fold == b.fold
    if isinstance(a, Pixel):
        return a.x == b.x and a.shade is b.shade and same(a.label, b.label)
    return bool(a == b)


# Hashable leaves without NaN (NaN keys and set members never compare equal).
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(st.characters(codec=None, exclude_categories=())),
    st.binary(max_size=20),
    st.dates(),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.sampled_from(Shade),
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)
leaves = st.one_of(
    hashable_leaves,
    st.floats(),
    st.decimals(allow_nan=True),
    st.times(timezones=st.none() | st.timezones()),
    st.builds(bytearray, st.binary(max_size=20)),
    st.builds(Pixel, st.integers(), st.sampled_from(Shade), st.none() | st.text()),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5) | st.just("$t"), inner, max_size=5),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Pixel, st.integers(), st.sampled_from(Shade), inner),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_random_values_round_trip_through_json(value: Any) -> None:
    data = serialize(value)
    assert is_json_data(data)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert same(deserialize(json.loads(text)), value)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**53) + 1, 2**53 - 1)
        | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != 0.0)
        | st.text(),
        lambda i: st.lists(i) | st.dictionaries(st.text(), i),
    )
)
def test_plain_json_values_are_their_own_encoding(value: Any) -> None:
    if "$t" not in json.dumps(value):
        serialized = serialize(value)
        assert serialized == value
        assert deserialize(serialized) == value


@given(st.uuids())
def test_uuid_keys_keep_order(key: uuid.UUID) -> None:
    value = {key: 1, "a": 2}
    assert list(deserialize(serialize(value))) == [key, "a"]
