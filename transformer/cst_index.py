"""A pre-order index of a libcst tree: parents, subtree extents, pruned walks.

Walking a tree through libcst itself (a visitor, or ``CSTNode.children``) rebuilds or
re-visits every node, which costs more than the whole analysis that needs the walk. The
index reads each node's child fields directly instead.

Which fields hold children is read from libcst's own dataclass fields, the first time a
node type is met, so the index follows whatever libcst is installed (no table to go
stale): a field is read when its annotation names a node class that is not *trivia*
(whitespace, comments, punctuation, which nothing in the transformer looks at). Node
classes a libcst release adds are named by the annotations of the fields holding them, so
they are indexed without a change here.

Children are indexed in dataclass field order. That is source order for everything that
matters here (statements of a block, the branches of an ``if``/``try``), but not for every
expression field: a ``def``'s decorators are declared, and so indexed, after its body.
Nothing reads source order from the index except the order of statements.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

import libcst as cst

__all__ = ["TRIVIA", "CSTIndex", "child_fields", "nested_scope"]

TRIVIA: tuple[type[cst.CSTNode], ...] = (
    cst.BaseParenthesizableWhitespace,
    cst.TrailingWhitespace,
    cst.EmptyLine,
    cst.Newline,
    cst.Comment,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.AssignEqual,
    cst.Asynchronous,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.ParamSlash,
)
"""Node types the index leaves out: layout and punctuation, never looked at."""


def _all_node_types() -> set[type]:
    found: set[type] = set()
    pending: list[type] = [cst.CSTNode]
    while pending:
        sub: type
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def _trivia_names() -> frozenset[str]:
    """Names of the trivia node classes (libcst builds each node class twice, the second
    time with slots, so classes are compared by name)."""
    exported = (value for value in vars(cst).values() if isinstance(value, type))
    return frozenset(kind.__name__ for kind in exported if issubclass(kind, TRIVIA))


_TRIVIA_NAMES = _trivia_names()
_NODE_NAMES = frozenset(kind.__name__ for kind in _all_node_types())
# Every node type worth indexing. libcst node classes are final, so ``type(v) in`` this
# set replaces an isinstance test on libcst's ABC-based classes, which costs several times
# more in the walk's inner loop.
_INDEXED = frozenset(kind for kind in _all_node_types() if kind.__name__ not in _TRIVIA_NAMES)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHILD_FIELDS: dict[type[cst.CSTNode], tuple[str, ...]] = {}


def child_fields(kind: type[cst.CSTNode]) -> tuple[str, ...]:
    """The fields of node type ``kind`` that may hold indexed (non-trivia) children.

    Args:
        kind: a libcst node class (a dataclass).

    Returns:
        The field names in declaration order: those whose annotation names a node class
        that is not trivia. Annotations are read as text, so real types, forward
        references and string annotations are treated alike.
    """
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        kept: list[str] = []
        for field in dataclasses.fields(kind):
            annotation = field.type if isinstance(field.type, str) else str(field.type)
            named = set(_IDENTIFIER.findall(annotation)) & _NODE_NAMES
            if named - _TRIVIA_NAMES:
                kept.append(field.name)
        fields = _CHILD_FIELDS[kind] = tuple(kept)
    return fields


class CSTIndex:
    """One walk of a tree recording pre-order, subtree extents and parents (trivia left out).

    ``order`` lists the nodes in pre-order; ``position[n]`` is n's index in it and
    ``end[n]`` one past its last descendant, so ``order[position[n]:end[n]]`` is n's
    subtree.
    """

    def __init__(self) -> None:
        self.order: list[cst.CSTNode] = []
        self.position: dict[cst.CSTNode, int] = {}
        self.end: dict[cst.CSTNode, int] = {}
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}

    def build(self, root: cst.CSTNode) -> CSTIndex:
        """Index ``root`` and its descendants; returns this index."""
        self._walk(root)
        return self

    def _walk(self, node: cst.CSTNode) -> None:
        order = self.order
        self.position[node] = len(order)
        order.append(node)
        parents = self.parents
        for name in child_fields(type(node)):
            value = getattr(node, name)
            kind = type(value)
            if kind is list or kind is tuple:
                for item in value:
                    if type(item) in _INDEXED:
                        parents[item] = node
                        self._walk(item)
            elif kind in _INDEXED:
                parents[value] = node
                self._walk(value)
        self.end[node] = len(order)

    def subtree(
        self, node: cst.CSTNode, prune: Callable[[cst.CSTNode], bool] | None = None
    ) -> Iterator[cst.CSTNode]:
        """``node`` and its descendants in pre-order; ``prune(n)`` skips n's descendants."""
        i, stop = self.position[node], self.end[node]
        while i < stop:
            current = self.order[i]
            yield current
            if prune is not None and current is not node and prune(current):
                i = self.end[current]
            else:
                i += 1


_NESTED_SCOPES = frozenset({cst.FunctionDef, cst.ClassDef, cst.Lambda})


def nested_scope(node: cst.CSTNode) -> bool:
    """True for the nodes that open a new scope: defs, classes, lambdas."""
    return type(node) in _NESTED_SCOPES
