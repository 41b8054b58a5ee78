"""A pre-order index of a libcst tree: parents, subtree extents, pruned walks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libcst as cst

from wfkit.transformer.cst_fields import CHILD_FIELDS, LIBCST_VERSION

__all__ = ["CSTIndex", "nested_scope"]


def _libcst_version() -> str | None:
    try:
        from libcst._version import __version__
    except ImportError:  # pragma: no cover - layout of another libcst
        return None
    return str(__version__)


# The table of child fields is exact only for the libcst version it was generated from.
_FIELDS_USABLE = _libcst_version() == LIBCST_VERSION
_FIELDS: dict[type[cst.CSTNode], tuple[str, ...]] = {}


def _node_types() -> frozenset[type]:
    found: set[type] = set()
    pending: list[type] = [cst.CSTNode]
    while pending:
        kind = pending.pop()
        sub: type
        for sub in kind.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return frozenset(found)


# Every libcst node class: ``type(v) in`` this is much cheaper than isinstance on
# libcst's ABC-based classes, and the trees indexed here come from libcst's parser.
_NODE_TYPES = _node_types()


def _fields(kind: type[cst.CSTNode]) -> tuple[str, ...] | None:
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = CHILD_FIELDS.get(kind.__name__)
        if fields is None or getattr(cst, kind.__name__, None) is not kind:
            return None
        _FIELDS[kind] = fields
    return fields


class CSTIndex(cst.CSTVisitor):
    """One traversal recording pre-order, subtree extents and parents.

    ``CSTNode.children`` re-visits the node on every call, so walking a tree through it is
    slow; slicing this pre-order list is not. :meth:`build` reads child fields directly
    (skipping whitespace and punctuation nodes, which nothing here looks at), which is
    several times faster than a libcst visitor; visiting the tree with this visitor gives
    the same index with every node included.
    """

    def __init__(self) -> None:
        super().__init__()
        self.order: list[cst.CSTNode] = []
        self.position: dict[cst.CSTNode, int] = {}
        self.end: dict[cst.CSTNode, int] = {}
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

    def build(self, root: cst.CSTNode) -> CSTIndex:
        """Index ``root`` (the fast way when the field table fits the installed libcst)."""
        if not _FIELDS_USABLE:
            root.visit(self)
            return self
        self._walk(root)
        return self

    def _walk(self, node: cst.CSTNode) -> None:
        order = self.order
        self.position[node] = len(order)
        order.append(node)
        fields = _fields(type(node))
        if fields is None:  # not in the table: fall back to libcst's own child listing
            children: list[cst.CSTNode] = list(node.children)
        else:
            children = []
            for name in fields:
                value = getattr(node, name)
                kind = type(value)
                if kind is list or kind is tuple:
                    children.extend(v for v in value if type(v) in _NODE_TYPES)
                elif kind in _NODE_TYPES:
                    children.append(value)
        parents = self.parents
        for child in children:
            parents[child] = node
            self._walk(child)
        self.end[node] = len(order)

    def on_visit(self, node: cst.CSTNode) -> bool:
        """Record ``node`` in pre-order."""
        if self._stack:
            self.parents[node] = self._stack[-1]
        self.position[node] = len(self.order)
        self.order.append(node)
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        """Close ``original_node``'s subtree."""
        self._stack.pop()
        self.end[original_node] = len(self.order)

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
