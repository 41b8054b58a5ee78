"""The JSON rows a Postgres write sends (``writes._row_json``) are, byte for byte,
the JSON of the row as a dict: what ``json_to_recordset`` reads is unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from wfkit.worlds.postgres import writes
from wfkit.worlds.postgres.writes import _json_default, _row_json, _time_texts

COLUMNS = (
    ("text", "TEXT"),
    ("number", "INTEGER"),
    ("maybe", "TEXT"),
    ("real", "float8"),
    ("flag", "BOOLEAN"),
    ("at", "TIMESTAMP WITH TIME ZONE"),
)
AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _as_dict(values: list[Any], ord: int) -> str:
    names = [name for name, _ in COLUMNS]
    row = dict(zip([*names, "ord"], [*values, ord], strict=True))
    return json.dumps(row, separators=(",", ":"), default=_json_default, allow_nan=False)


@pytest.mark.parametrize(
    "values",
    [
        ['a "quoted" \\ back\x00slash é \u2028 \U0001f600', 5, None, 1.5, True, AT],
        ["", -3, "z", 0.1, False, None],
        [None, None, None, None, None, None],
        [1, "text in a number column", 2**70, 3.0, 0, '{"doc":"\\u0000"}'],
    ],
)
def test_a_row_is_the_json_of_its_dict(values: list[Any]) -> None:
    for ord in (0, 7):
        assert _row_json(COLUMNS)(values, ord) == _as_dict(values, ord)


def test_nan_is_refused_as_the_encoder_refuses_it() -> None:
    with pytest.raises(ValueError):
        _row_json(COLUMNS)(["a", 1, None, float("nan"), True, None], 0)


def test_time_texts_are_iso_and_none_stays_none() -> None:
    iso = _time_texts()
    assert iso(None) is None
    assert iso(AT) == AT.isoformat()
    assert iso(AT) is iso(AT)  # formatted once per plan


def test_time_texts_stay_right_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The texts are kept across plans but bounded: past the bound they are
    forgotten and made again, never confused."""
    monkeypatch.setattr(writes, "_ISO_KEPT", 4)
    iso = _time_texts()
    times = [datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC) for second in range(10)]
    for at in times * 2:
        assert iso(at) == at.isoformat()
        assert iso(None) is None
    assert len(writes._ISO_TEXTS) <= 5
