"""CSTIndex: the child fields it reads are libcst's own, and it sees what a libcst visit sees.

Nothing here depends on the libcst version: the fields come from the installed libcst's
dataclasses, and the reference is a walk by libcst's own visitor.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import libcst as cst
import pytest

from wfkit.transformer.cst_index import TRIVIA, CSTIndex, child_fields

ROOT = Path(__file__).resolve().parents[2]
_VISITED = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')

# Python syntax the repository's own sources may not use, so that every kind of node
# is indexed at least once (libcst parses 3.12+ syntax on any Python).
SYNTAX = '''
"""Docstring."""
from __future__ import annotations
import os.path as p, sys
from . import sibling
from ..pkg import (a as b, c)
from m import *
x: int = 1; y = z = (1, 2)
x += 1; x -= 1; x *= 1; x /= 1; x //= 1; x %= 1; x **= 1; x @= m
x <<= 1; x >>= 1; x &= 1; x |= 1; x ^= 1
del x, y[0], z.a
assert x, "message"
global g
[first, *rest] = (q := [1, 2, 3])
s = {1, 2} | {i for i in range(3) if i}
d = {**d, "k": v, **{k: v for k, v in d.items()}}
g = (i async for i in aiter() if await i)
t = lambda a, /, b=1, *args, c, d=2, **kw: (a + b - c * d / 1 // 2 % 3 ** 4 @ m)
u = -a, +b, ~c, not d, a and b or c, a if b else c, a < b <= c > d >= e == f != g
v = a in b, a not in b, a is b, a is not b, a << b >> c & d | e ^ f
w = f"{a!r:>{width}} {b=}" "implicit" r"raw", b"bytes", 1.5, 2j, ...
sl = a[1:2:3, ::2, 0]
type Alias[T: int, *Ts, **P] = list[T]


@decorator(arg=1)
class C[T](Base, metaclass=Meta):
    attr: int

    async def method[U](self, a: int = 1, *, b: U) -> None:
        nonlocal_name = 1

        def inner():
            nonlocal nonlocal_name
            nonlocal_name = 2

        async with ctx() as (m, n), other:
            pass
        async for i in items():
            continue
        for j in range(3):
            break
        else:
            pass
        while x:
            yield x
            yield from y
        try:
            raise ValueError("x") from None
        except (TypeError, ValueError) as error:
            pass
        else:
            pass
        finally:
            pass
        try:
            pass
        except* OSError as group:
            pass
        match command:
            case Point(x=0, y=_) | [1, 2, *others] | {"k": v, **kw} if v:
                pass
            case None | True | "text" | -1 | a.b as bound:
                pass
            case (first, second):
                pass
        if a:
            pass
        elif b:
            return await c
        with open("f") as handle: pass
'''


def _corpus() -> dict[str, str]:
    sources = {"syntax": SYNTAX}
    for folder in ("transformer", "wfbuild", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            sources[str(path.relative_to(ROOT))] = path.read_text()
    return sources


CORPUS = _corpus()


class _VisitorIndex(cst.CSTVisitor):
    """The reference: pre-order and parents of every node, by libcst's own traversal."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[cst.CSTNode] = []
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.parents[node] = self._stack[-1]
        self.order.append(node)
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()


def _exported_node_classes() -> list[type[cst.CSTNode]]:
    return [
        value
        for _, value in sorted(vars(cst).items())
        if isinstance(value, type)
        and issubclass(value, cst.CSTNode)
        and dataclasses.is_dataclass(value)
        and not inspect.isabstract(value)
    ]


@pytest.mark.parametrize("kind", _exported_node_classes(), ids=lambda k: k.__name__)
def test_child_fields_are_fields_libcst_visits(kind: type[cst.CSTNode]) -> None:
    visited = set(_VISITED.findall(inspect.getsource(kind._visit_and_replace_children)))
    fields = child_fields(kind)
    assert set(fields) <= visited
    for name in visited - set(fields):
        # what the index skips can only hold layout and punctuation
        annotation = str(next(f.type for f in dataclasses.fields(kind) if f.name == name))
        named = [
            getattr(cst, word)
            for word in re.findall(r"\w+", annotation)
            if isinstance(getattr(cst, word, None), type)
            and issubclass(getattr(cst, word), cst.CSTNode)
        ]
        assert named and all(issubclass(t, TRIVIA) for t in named), (kind.__name__, name)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_index_sees_what_a_libcst_visit_sees(name: str) -> None:
    module = cst.parse_module(CORPUS[name])
    reference = _VisitorIndex()
    module.visit(reference)
    index = CSTIndex().build(module)

    wanted = [n for n in reference.order if not isinstance(n, TRIVIA)]
    assert set(index.order) == set(wanted)
    assert len(index.order) == len(wanted)
    for node in index.order:
        if node is not module:
            assert index.parents[node] is reference.parents[node]
        # a subtree is a contiguous run of the pre-order
        for descendant in index.order[index.position[node] + 1 : index.end[node]]:
            ancestor = index.parents[descendant]
            while ancestor is not node:
                ancestor = index.parents[ancestor]
    statements = (cst.BaseStatement, cst.BaseSmallStatement)
    assert [n for n in index.order if isinstance(n, statements)] == [
        n for n in wanted if isinstance(n, statements)
    ]


def test_corpus_covers_most_node_types() -> None:
    seen: set[type[cst.CSTNode]] = set()
    for source in CORPUS.values():
        seen.update(type(n) for n in CSTIndex().build(cst.parse_module(source)).order)
    indexable = {k for k in _exported_node_classes() if not issubclass(k, TRIVIA)}
    missing = sorted(k.__name__ for k in indexable - seen)
    # t-strings, lazy imports and dict unpacking in comprehensions are newer syntax than
    # this libcst parses by default
    assert set(missing) <= {
        "LazyImport",
        "LazyImportFrom",
        "TemplatedString",
        "TemplatedStringExpression",
        "TemplatedStringText",
        "StarredDictComp",
        "StarredDictElement",
    }, missing


def test_subtree_prunes() -> None:
    module = cst.parse_module("def f():\n    def g():\n        x = 1\n    y = 2\n")
    index = CSTIndex().build(module)
    f = module.body[0]
    assert isinstance(f, cst.FunctionDef)
    pruned = list(index.subtree(f.body, prune=lambda n: isinstance(n, cst.FunctionDef)))
    assert [n.name.value for n in pruned if isinstance(n, cst.FunctionDef)] == ["g"]
    assert {n.value for n in pruned if isinstance(n, cst.Name)} == {"y"}
