"""Line maps: which generated lines came from which original lines.

The transformers keep every untouched subtree as the *same object* (they do not enter
clean subtrees), so after transforming we find kept statements by identity, note their
lines in the generated module, and pair them with the lines recorded before the
transform. The result is a tuple of ``(generated_start, original_start, count)`` runs.

Lines are found by :class:`LineRecorder`, a codegen state that produces the module's
code and, in the same pass, the token range of every node with the same start and end
rules as libcst's ``PositionProvider`` (syntactic positions, without leading lines). Only
line numbers are needed, so it counts newlines once per requested position instead of
tracking line and column on every token, which makes it an order of magnitude cheaper
than resolving ``PositionProvider``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import libcst as cst
from libcst._nodes.internal import CodegenState

from transformer.result import LineMap

__all__ = ["LineRecorder", "LineTracker", "render_line_map"]

Lines = tuple[int, int]  # first and last line of a node, 1-based


def _tracked(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.BaseStatement)


class LineRecorder(CodegenState):
    """Codegen state that records each node's token range (``PositionProvider`` rules)."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.ranges: dict[cst.CSTNode, tuple[int, int]] = {}
        self._starts: list[int] = []
        self._syntactic: list[tuple[cst.CSTNode, cst.CSTNode | None, cst.CSTNode | None, int]] = []
        self._popped = ""

    def before_codegen(self, node: cst.CSTNode) -> None:
        """Remember where ``node``'s tokens start."""
        self._starts.append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        """Record ``node``'s range unless its syntactic range was recorded already."""
        start = self._starts.pop()
        ranges = self.ranges
        if node not in ranges:
            ranges[node] = (start, len(self.tokens))

    def record_syntactic_position(  # type: ignore[override]  # a plain context manager
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> LineRecorder:
        """Record ``node``'s syntactic range (optionally hoisted from child nodes).

        Returns this state as the context manager (``with`` blocks nest, so a stack
        suffices), which is much cheaper than a generator-based context manager.
        """
        self._syntactic.append((node, start_node, end_node, len(self.tokens)))
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        node, start_node, end_node, start = self._syntactic.pop()
        end = len(self.tokens)
        if start_node is not None:
            start = self.ranges[start_node][0]
        if end_node is not None:
            end = self.ranges[end_node][1]
        self.ranges[node] = (start, end)

    def pop_trailing_newline(self) -> None:
        """Drop the module's final newline from the code (positions still count it)."""
        if self.tokens:
            self._popped = self.tokens.pop()

    def code(self) -> str:
        """The generated source text."""
        return "".join(self.tokens)

    def lines_of(
        self, nodes: Iterator[cst.CSTNode] | list[cst.CSTNode]
    ) -> dict[cst.CSTNode, Lines]:
        """First and last line of each of ``nodes`` (which must have been generated)."""
        wanted = [(node, self.ranges[node]) for node in nodes]
        offsets = sorted({i for _, (start, end) in wanted for i in (start, end)})
        tokens = [*self.tokens, self._popped]
        line_at: dict[int, int] = {}
        line, index = 1, 0
        crlf = any("\r" in token for token in tokens)
        for offset in offsets:
            if offset > index:
                chunk = "".join(tokens[index:offset])
                line += chunk.count("\n")
                if crlf:
                    line += chunk.count("\r") - chunk.count("\r\n")
                index = offset
            line_at[offset] = line
        return {node: (line_at[start], line_at[end]) for node, (start, end) in wanted}


def generate(module: cst.Module) -> LineRecorder:
    """Run codegen of ``module`` through a :class:`LineRecorder`."""
    state = LineRecorder(module)
    module._codegen(state)
    return state


class LineTracker:
    """Records original statement lines; later maps a generated module back to them."""

    def __init__(self, module: cst.Module) -> None:
        recorder = generate(module)
        nodes = [node for node in recorder.ranges if _tracked(node)]
        self._original = recorder.lines_of(nodes)

    def generate(
        self, generated: cst.Module, origins: Mapping[cst.CSTNode, cst.CSTNode] | None = None
    ) -> tuple[str, LineMap]:
        """The code of ``generated`` and its line map.

        ``generated`` must share kept nodes with the original tree.

        Args:
            generated: the transformed module.
            origins: rebuilt nodes whose text is unchanged, mapped to their originals.
        """
        origins = origins or {}
        recorder = generate(generated)
        original = self._original
        ranges = recorder.ranges
        kept = [n for n in original if n in ranges]
        kept += [
            n for n, o in origins.items() if o in original and n in ranges and n not in original
        ]
        positions = recorder.lines_of(kept)
        runs: list[tuple[int, int, int]] = []
        # Every node once, no traversal: runs of nodes nested in a kept statement have the
        # same offset as the statement's run and merge into it.
        for node in kept:
            new = positions[node]
            old = original.get(node)
            if old is not None:  # the very same object: its whole text is unchanged
                runs.append((new[0], old[0], _span(old)))
                continue
            source = origins[node]
            rebuilt = original[source]
            same = type(node) is type(source) and _span(new) == _span(rebuilt)
            runs.append((new[0], rebuilt[0], _span(new) if same else 1))
        return recorder.code(), _merge(runs)


def _span(lines: Lines) -> int:
    return lines[1] - lines[0] + 1


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
