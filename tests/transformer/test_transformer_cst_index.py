"""The fast CSTIndex: its field table matches libcst, its order matches a libcst visit."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import libcst as cst
import pytest
from libcst._nodes.base import CSTNode

from wfkit.transformer import cst_index
from wfkit.transformer.cst_fields import CHILD_FIELDS, LIBCST_VERSION
from wfkit.transformer.cst_index import CSTIndex

ROOT = Path(__file__).resolve().parents[2]
_VISITED = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')


def test_field_table_matches_installed_libcst() -> None:
    if not cst_index._FIELDS_USABLE:
        pytest.skip(f"libcst is not {LIBCST_VERSION}: the index falls back to a visitor")
    for name, fields in CHILD_FIELDS.items():
        kind = getattr(cst, name)
        assert issubclass(kind, CSTNode)
        visited = list(
            dict.fromkeys(_VISITED.findall(inspect.getsource(kind._visit_and_replace_children)))
        )
        # the table keeps the visited fields in order, minus whitespace and punctuation
        assert list(fields) == [f for f in visited if f in fields], name


@pytest.mark.parametrize(
    "path",
    [
        "examples/e2e/basics.py",
        "transformer/discovery.py",
        "tests/transformer/test_transformer_scopes.py",
    ],
)
def test_fast_index_matches_visitor_order(path: str) -> None:
    module = cst.parse_module((ROOT / path).read_text())
    slow = CSTIndex()
    module.visit(slow)
    fast = CSTIndex().build(module)
    kept = set(fast.order)
    assert [n for n in slow.order if n in kept] == fast.order
    for node in fast.order:
        if node is not module:
            assert fast.parents[node] is slow.parents[node]
    # everything the analysis looks for is indexed
    interesting = (cst.BaseStatement, cst.BaseSmallStatement, cst.BaseExpression, cst.Decorator)
    assert {n for n in slow.order if isinstance(n, interesting)} <= kept
