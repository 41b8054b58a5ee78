"""Standard types (issue 12) through a real run on every world: workflow arguments, step
arguments, a dataclass holding them, step results and the run's result."""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
from typing import Any

from examples.e2e import values
from tests.e2e.conftest import run_async, run_to_end

CET = dt.timezone(dt.timedelta(hours=1), "CET")


def test_standard_values_cross_every_boundary(world: Any) -> None:
    sent = {
        "path": pathlib.Path("/srv/data/in.csv"),
        "windows": pathlib.PureWindowsPath(r"C:\reports\q1.xlsx"),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "grouped": collections.defaultdict(list, {"x": [1, 2]}),
        "counts": collections.Counter("hello"),
        "window": collections.deque([1, 2, 3], maxlen=3),
        "impedance": complex(50, -25),
        "meeting": dt.datetime(2026, 5, 4, 9, 30, tzinfo=CET),
        "deadline": dt.datetime(2026, 5, 4, 17, 0, tzinfo=dt.UTC),
    }
    inventory = values.Inventory(
        where=pathlib.PurePosixPath("/warehouse/7"),
        counts=collections.Counter({"bolts": 3}),
        recent=collections.deque(["a", "b"], maxlen=5),
    )
    _run, result = run_async(run_to_end(world, values.standard_values, sent, inventory))
    assert not isinstance(result, BaseException), result
    expected_types = sorted({type(v).__name__ for v in sent.values()})
    assert result["workflow_saw"] == result["types"] == expected_types
    back = result["values"]
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in sent.items()}
    assert back == sent
    assert list(back["ordered"]) == ["z", "a"]
    assert back["grouped"].default_factory is list and back["grouped"]["new"] == []
    assert back["window"].maxlen == 3
    assert back["meeting"].tzname() == "CET" and back["deadline"].tzinfo is dt.UTC
    assert result["inventory"] == inventory and result["recent_maxlen"] == 5
