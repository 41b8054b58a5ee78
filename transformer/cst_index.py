"""A pre-order index of a libcst tree: parents, subtree extents, pruned walks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libcst as cst

__all__ = ["CSTIndex", "nested_scope"]


class CSTIndex(cst.CSTVisitor):
    """One traversal recording pre-order, subtree extents and parents.

    ``CSTNode.children`` re-visits the node on every call, so walking a tree through it is
    slow; slicing this pre-order list is not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.order: list[cst.CSTNode] = []
        self.position: dict[cst.CSTNode, int] = {}
        self.end: dict[cst.CSTNode, int] = {}
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []

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


def nested_scope(node: cst.CSTNode) -> bool:
    """True for the nodes that open a new scope: defs, classes, lambdas."""
    return isinstance(node, cst.FunctionDef | cst.ClassDef | cst.Lambda)
