"""The worlds' JSON helpers answer exactly as ``json.dumps``/``json.loads`` do: stored
text and decoded values must not change with the faster path (old files stay readable,
new ones stay byte-identical), and bad text fails with the standard error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wfkit.worlds.base.json_text import dump_json, load_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


def _same(left: Any, right: Any) -> bool:
    """Equal as JSON values (NaN included, which is not equal to itself)."""
    return json.dumps(left) == json.dumps(right)


@given(json_values)
def test_values_encode_and_decode_as_the_json_module_does(value: Any) -> None:
    text = dump_json(value)
    assert text == json.dumps(value, separators=(",", ":"))
    assert _same(load_json(text), json.loads(text))


@given(st.text(max_size=30) | json_values.map(json.dumps))
def test_any_text_decodes_or_fails_as_json_loads_does(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except json.JSONDecodeError as error:
        try:
            load_json(text)
        except json.JSONDecodeError as ours:
            assert (ours.msg, ours.pos) == (error.msg, error.pos)
        else:
            raise AssertionError(f"{text!r} decoded, but json.loads refuses it") from None
    else:
        assert _same(load_json(text), expected)


def test_text_around_a_value_is_refused_as_json_loads_refuses_it() -> None:
    for text in ('{"a":1} x', "[1]]", "1 2"):
        try:
            load_json(text)
        except json.JSONDecodeError as error:
            assert error.msg == "Extra data"
        else:
            raise AssertionError(f"{text!r} decoded")
    assert load_json(' {"a": [1, 2]}\n') == {"a": [1, 2]}


def test_unencodable_values_fail_as_json_dumps_fails() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for bad in (circular, {"a": object()}, {"a": {1, 2}}):
        try:
            json.dumps(bad, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            expected = (type(error), str(error))
        try:
            dump_json(bad)
        except (TypeError, ValueError) as error:
            assert (type(error), str(error)) == expected
        else:
            raise AssertionError(f"{bad!r} encoded")
    assert (
        dump_json({"a": [1, "é\x00"]}) == '{"a":[1,"\\u00e9\\u0000"]}'
    )  # a failure leaves no trace


def test_a_failed_encoding_leaves_no_trace_in_the_next() -> None:
    """Each thread reuses one encoder: after a failure inside containers (their
    circular-reference marks left behind), the same containers still encode."""
    for _ in range(3):
        holder: list[Any] = [1, object()]
        outer = {"holder": holder}
        try:
            dump_json(outer)
        except TypeError:
            pass
        else:
            raise AssertionError("encoded an object()")
        holder.pop()
        assert (
            dump_json({"again": holder, "outer": outer}) == '{"again":[1],"outer":{"holder":[1]}}'
        )


def test_encodings_on_several_threads_and_nested_ones_are_independent() -> None:
    import threading

    class Items(dict[str, Any]):
        """A mapping whose ``items`` runs Python code that encodes too."""

        def items(self) -> Any:  # type: ignore[override]
            inner.append(dump_json({"inner": [1, {"x": None}]}))
            return super().items()

    inner: list[str] = []
    value = {"a": [1, 2, {"b": "c"}] * 50}
    expected = json.dumps(value, separators=(",", ":"))
    results: list[str] = []

    def encode_many() -> None:
        for _ in range(200):
            results.append(dump_json(value))

    threads = [threading.Thread(target=encode_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 800
    nested = Items(a=[1], b={"c": 2})
    assert dump_json({"outer": nested}) == json.dumps({"outer": nested}, separators=(",", ":"))
    assert inner and all(text == '{"inner":[1,{"x":null}]}' for text in inner)
