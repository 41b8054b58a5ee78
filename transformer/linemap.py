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

import ast
from collections.abc import Iterator, Mapping, Sequence

import libcst as cst
from libcst._nodes.internal import CodegenState

from wfkit.transformer.result import LineMap

__all__ = ["LineRecorder", "LineTracker", "render_line_map"]

Lines = tuple[int, int]  # first and last line of a node, 1-based


def _tracked(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.BaseStatement)


class LineRecorder(CodegenState):
    """Codegen state that records each node's token range (``PositionProvider`` rules)."""

    def __init__(self, module: cst.Module, record_all: bool = False) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        # token ranges by id(node): ids are stable while the tree is alive, and hashing
        # them is much cheaper than CSTNode.__hash__
        self.ranges: dict[int, tuple[int, int]] = {}
        # by default only the node types a statement's range can depend on are recorded
        self._record: frozenset[type[cst.CSTNode]] | None = None if record_all else _RECORDED
        self.nodes: dict[int, cst.CSTNode] = {}  # every recorded node, with record_all
        self._record_all = record_all
        self._starts: list[int] = []
        self._syntactic: list[tuple[cst.CSTNode, cst.CSTNode | None, cst.CSTNode | None, int]] = []
        self._popped = ""

    def before_codegen(self, node: cst.CSTNode) -> None:
        """Remember where ``node``'s tokens start."""
        record = self._record
        if record is None or type(node) in record:
            self._starts.append(len(self.tokens))

    def after_codegen(self, node: cst.CSTNode) -> None:
        """Record ``node``'s range unless its syntactic range was recorded already."""
        record = self._record
        if record is None or type(node) in record:
            start = self._starts.pop()
            key = id(node)
            ranges = self.ranges
            if key not in ranges:
                ranges[key] = (start, len(self.tokens))
                if self._record_all:
                    self.nodes[key] = node

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
        ranges = self.ranges
        if start_node is not None:
            start = ranges[id(start_node)][0]  # KeyError: see generate()
        if end_node is not None:
            end = ranges[id(end_node)][1]
        ranges[id(node)] = (start, end)
        if self._record_all:
            self.nodes[id(node)] = node

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
        wanted = [(node, self.ranges[id(node)]) for node in nodes]
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


def _recorded_types() -> frozenset[type[cst.CSTNode]]:
    """Statements and what libcst hoists a statement's start or end from."""
    bases = (cst.BaseStatement, cst.BaseSmallStatement, cst.BaseSuite)
    found: set[type[cst.CSTNode]] = {cst.Else, cst.Finally, cst.ExceptHandler, cst.MatchCase}
    found |= {cst.ExceptStarHandler, cst.ImportAlias, cst.ImportStar, cst.RightParen}
    for name in dir(cst):
        value = getattr(cst, name)
        if isinstance(value, type) and issubclass(value, bases):
            found.add(value)
    return frozenset(found)


_RECORDED = _recorded_types()


def generate(module: cst.Module, record_all: bool = False) -> LineRecorder:
    """Run codegen of ``module`` through a :class:`LineRecorder`.

    A statement whose range libcst hoists from a node type not recorded by default
    raises KeyError; the pass is then repeated recording every node.
    """
    state = LineRecorder(module, record_all)
    try:
        module._codegen(state)
    except KeyError:
        if record_all:
            raise
        return generate(module, record_all=True)
    return state


class _Mismatch(Exception):
    """The CST and the AST do not line up statement for statement."""


_COMPOUND: dict[type[cst.CSTNode], tuple[type[ast.stmt], ...]] = {
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef),
    cst.ClassDef: (ast.ClassDef,),
    cst.If: (ast.If,),
    cst.For: (ast.For, ast.AsyncFor),
    cst.While: (ast.While,),
    cst.With: (ast.With, ast.AsyncWith),
    cst.Try: (ast.Try,),
    cst.TryStar: (ast.TryStar,),
    cst.Match: (ast.Match,),
}


def statement_lines(module: cst.Module, tree: ast.Module) -> dict[cst.CSTNode, Lines]:
    """First and last line of every statement of ``module``, read off CPython's AST.

    ``PositionProvider`` puts a statement from its first token after leading lines and
    decorators to the end of its last small statement or of its last nested statement,
    which is the AST's ``lineno``/``end_lineno`` (of the first and last small statement
    of a line). Walking both trees' statement lists side by side pairs them up; any
    disagreement raises :class:`_Mismatch`.
    """
    out: dict[cst.CSTNode, Lines] = {}
    _pair_bodies(module.body, tree.body, out)
    return out


def _pair_bodies(
    statements: Sequence[cst.BaseStatement], nodes: list[ast.stmt], out: dict[cst.CSTNode, Lines]
) -> None:
    i = 0
    for stmt in statements:
        if isinstance(stmt, cst.SimpleStatementLine):
            group = nodes[i : i + len(stmt.body)]
            if len(group) != len(stmt.body):
                raise _Mismatch
            i += len(group)
            end = group[-1].end_lineno
            if end is None:
                raise _Mismatch
            out[stmt] = (group[0].lineno, end)
            continue
        if i >= len(nodes):
            raise _Mismatch
        _pair_compound(stmt, nodes[i], out)
        i += 1
    if i != len(nodes):
        raise _Mismatch


def _pair_compound(stmt: cst.BaseStatement, node: ast.stmt, out: dict[cst.CSTNode, Lines]) -> None:
    kinds = _COMPOUND.get(type(stmt))
    if kinds is None or not isinstance(node, kinds) or node.end_lineno is None:
        raise _Mismatch
    out[stmt] = (node.lineno, node.end_lineno)
    if isinstance(stmt, cst.FunctionDef | cst.ClassDef | cst.With):
        assert isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.With | ast.AsyncWith
        )
        _pair_suite(stmt.body, node.body, out)
    elif isinstance(stmt, cst.If):
        assert isinstance(node, ast.If)
        _pair_suite(stmt.body, node.body, out)
        if isinstance(stmt.orelse, cst.If):
            if len(node.orelse) != 1:
                raise _Mismatch
            _pair_compound(stmt.orelse, node.orelse[0], out)
        elif stmt.orelse is not None:
            _pair_suite(stmt.orelse.body, node.orelse, out)
        elif node.orelse:
            raise _Mismatch
    elif isinstance(stmt, cst.For | cst.While):
        assert isinstance(node, ast.For | ast.AsyncFor | ast.While)
        _pair_suite(stmt.body, node.body, out)
        _pair_optional(stmt.orelse, node.orelse, out)
    elif isinstance(stmt, cst.Try | cst.TryStar):
        assert isinstance(node, ast.Try | ast.TryStar)
        _pair_suite(stmt.body, node.body, out)
        handlers: Sequence[cst.ExceptHandler | cst.ExceptStarHandler] = stmt.handlers
        if len(handlers) != len(node.handlers):
            raise _Mismatch
        for handler, ast_handler in zip(handlers, node.handlers, strict=True):
            _pair_suite(handler.body, ast_handler.body, out)
        _pair_optional(stmt.orelse, node.orelse, out)
        _pair_optional(stmt.finalbody, node.finalbody, out)
    else:
        assert isinstance(stmt, cst.Match) and isinstance(node, ast.Match)
        if len(stmt.cases) != len(node.cases):
            raise _Mismatch
        for case, ast_case in zip(stmt.cases, node.cases, strict=True):
            _pair_suite(case.body, ast_case.body, out)


def _pair_suite(body: cst.BaseSuite, nodes: list[ast.stmt], out: dict[cst.CSTNode, Lines]) -> None:
    if isinstance(body, cst.IndentedBlock):
        _pair_bodies(body.body, nodes, out)
    elif len(body.body) != len(nodes):  # a one-line suite holds no statement nodes
        raise _Mismatch


def _pair_optional(
    clause: cst.Else | cst.Finally | None, nodes: list[ast.stmt], out: dict[cst.CSTNode, Lines]
) -> None:
    if clause is None:
        if nodes:
            raise _Mismatch
        return
    _pair_suite(clause.body, nodes, out)


class LineTracker:
    """Records original statement lines; later maps a generated module back to them."""

    def __init__(self, module: cst.Module, tree: ast.Module | None = None) -> None:
        """Record the lines of ``module``'s statements.

        Args:
            module: the original tree.
            tree: the same source parsed by ``ast``; its positions save a codegen pass.
        """
        if tree is not None:
            try:
                self._original = statement_lines(module, tree)
                return
            except _Mismatch:
                pass
        recorder = generate(module, record_all=True)
        nodes = [node for node in recorder.nodes.values() if _tracked(node)]
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
        kept = [n for n in original if id(n) in ranges]
        kept += [
            n for n, o in origins.items() if o in original and id(n) in ranges and n not in original
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
