"""Line maps: which generated lines came from which original lines.

The transformers keep every untouched subtree as the *same object* (they do not enter
clean subtrees), so after transforming we find kept statements by identity, ask libcst for
their positions in the generated module, and pair them with the positions recorded before
the transform. The result is a tuple of ``(generated_start, original_start, count)`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from transformer.result import LineMap

__all__ = ["LineTracker", "render_line_map"]


def _tracked(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.BaseStatement)


class LineTracker:
    """Records original statement positions; later maps a generated module back to them."""

    def __init__(self, wrapper: MetadataWrapper) -> None:
        positions = wrapper.resolve(PositionProvider)
        self._original: dict[cst.CSTNode, CodeRange] = {}
        for node, code_range in positions.items():
            if _tracked(node):
                self._original[node] = code_range
            elif isinstance(node, cst.FunctionDef | cst.ClassDef):
                self._original[node.name] = positions[node.name]

    def line_map(
        self, generated: cst.Module, origins: Mapping[cst.CSTNode, cst.CSTNode] | None = None
    ) -> LineMap:
        """The runs for ``generated``, which must share kept nodes with the original tree.

        Args:
            generated: the transformed module.
            origins: rebuilt nodes whose text is unchanged, mapped to their originals.
        """
        origins = origins or {}
        positions = MetadataWrapper(generated, unsafe_skip_copy=True).resolve(PositionProvider)
        runs: list[tuple[int, int, int]] = []
        # Every node once, no traversal: runs of nodes nested in a kept statement have the
        # same offset as the statement's run and merge into it.
        for node, new in positions.items():
            kept = self._original.get(node)
            if kept is not None:  # the very same object: its whole text is unchanged
                runs.append((new.start.line, kept.start.line, _span(kept) if _tracked(node) else 1))
                continue
            source = origins.get(node)
            rebuilt = self._original.get(source) if source is not None else None
            if rebuilt is not None:
                same = type(node) is type(source) and _span(new) == _span(rebuilt)
                runs.append((new.start.line, rebuilt.start.line, _span(new) if same else 1))
        return _merge(runs)


def _span(code_range: CodeRange) -> int:
    return code_range.end.line - code_range.start.line + 1


def _merge(runs: list[tuple[int, int, int]]) -> LineMap:
    merged: list[tuple[int, int, int]] = []
    for gen, orig, count in sorted(runs):
        if merged:
            g, o, n = merged[-1]
            if gen - g == orig - o and gen <= g + n:
                merged[-1] = (g, o, max(n, gen + count - g))
                continue
        merged.append((gen, orig, count))
    return tuple(merged)


def render_line_map(line_map: LineMap) -> str:
    """The ``__wfkit_line_map__ = (...)`` statement that ends a generated module."""
    if not line_map:
        return "__wfkit_line_map__ = ()\n"
    rows = "".join(f"    ({g}, {o}, {n}),\n" for g, o, n in line_map)
    return f"__wfkit_line_map__ = (\n{rows})\n"
