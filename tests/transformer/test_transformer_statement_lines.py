"""Statement lines read off the AST equal those a libcst codegen pass records."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest

from wfkit.transformer.linemap import LineRecorder, LineTracker, generate, statement_lines

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("examples", "transformer", "tests/transformer", "wfbuild", "runtime")
    for p in (ROOT / folder).rglob("*.py")
)

TRICKY = '''@dec
async def f(a,
            b):
    x = 1
    # trailing comment

    # another
y = 2; z = (3,
  4)
class C: pass
if x:
    pass
elif y:
    pass
else:
    if z:
        pass
for i in x: pass
else:
    pass
try:
    pass
except* E:
    pass
try:
    s = """a
b"""
except E as e:
    pass
else:
    pass
finally:
    pass
while x:
    async with a as b, c:
        pass
match x:
    case 1:
        pass
    case _: pass
# end
'''


def _recorded(module: cst.Module) -> dict[cst.CSTNode, tuple[int, int]]:
    tracker = LineTracker(module)  # no AST: the codegen pass
    return tracker._original


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:  # an error fixture
        return False
    return True


@pytest.mark.parametrize(
    "source", [s for s in (TRICKY, *(p.read_text() for p in SOURCES)) if _parses(s)]
)
def test_ast_statement_lines_match_codegen(source: str) -> None:
    tree = ast.parse(source)
    module = cst.parse_module(source)
    assert statement_lines(module, tree) == _recorded(module)


@pytest.mark.parametrize("source", [TRICKY, "from os import *\nfrom os import (path)\n"])
def test_recorder_needs_no_fallback(source: str) -> None:
    module = cst.parse_module(source)
    fast = LineRecorder(module)
    module._codegen(fast)  # raises KeyError if a hoisted-from node type is not recorded
    full = generate(module, record_all=True)
    statements = [n for n in full.nodes.values() if isinstance(n, cst.BaseStatement)]
    assert fast.lines_of(statements) == full.lines_of(statements)
