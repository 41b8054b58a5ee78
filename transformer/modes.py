"""The machinery shared by the three mode transformers.

Each mode is one :class:`ModeTransformer` subclass that decides what a marked function
becomes (:meth:`ModeTransformer.replace_target`). This base class does the rest the same
way for every mode: it only enters subtrees that need changes (so untouched statements
stay the same objects and the line map can find them), strips directive strings, rewrites
imports, appends registrations after the module-level statement they belong to, and adds
the header, helper import and ``MODE`` assignment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache

import libcst as cst
import libcst.matchers as m

from wfkit.transformer.directive_nodes import leading_small_statements
from wfkit.transformer.discovery import Analysis, SerdeClass, Target
from wfkit.transformer.imports import Replacement
from wfkit.transformer.result import Mode

__all__ = ["HELPERS", "ModeTransformer", "helper_call_expr", "helper_statement", "string_literal"]

HELPERS = "__wfkit__"
HELPER_IMPORT = f"import wfkit.runtime.gen as {HELPERS}"

_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString() | m.ConcatenatedString())])
_FUTURE = m.SimpleStatementLine(body=[m.ImportFrom(module=m.Name("__future__"))])

NewStatement = cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel


def string_literal(text: str) -> cst.SimpleString:
    """A double-quoted Python string literal for ``text``."""
    return cst.SimpleString(json.dumps(text))


# Generated statements are built as nodes, not parsed from templates: parsing a template
# costs more than the rest of generating a mode. The nodes print exactly as the text they
# stand for (``tests/transformer/test_transformer_builders.py`` checks this).
_NO_SPACE = cst.SimpleWhitespace("")
_KEYWORD_EQUAL = cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE)


def helper_call_expr(
    helper: str, *args: cst.BaseExpression, **keywords: cst.BaseExpression
) -> cst.Call:
    """``__wfkit__.<helper>(arg, ..., keyword=value, ...)``."""
    arguments = [cst.Arg(value=arg) for arg in args]
    arguments += [
        cst.Arg(value=value, keyword=cst.Name(key), equal=_KEYWORD_EQUAL)
        for key, value in keywords.items()
    ]
    return cst.Call(
        func=cst.Attribute(value=cst.Name(HELPERS), attr=cst.Name(helper)), args=arguments
    )


def helper_statement(
    helper: str, *args: cst.BaseExpression, **keywords: cst.BaseExpression
) -> cst.SimpleStatementLine:
    """The statement ``__wfkit__.<helper>(arg, ..., keyword=value, ...)``."""
    return cst.SimpleStatementLine(
        body=[cst.Expr(value=helper_call_expr(helper, *args, **keywords))]
    )


@cache
def _prelude(mode: Mode) -> tuple[cst.SimpleStatementLine, cst.SimpleStatementLine]:
    """The helper import and the ``MODE`` assignment (immutable nodes, shared)."""
    helper_import = cst.parse_statement(HELPER_IMPORT)
    assert isinstance(helper_import, cst.SimpleStatementLine)
    mode_line = cst.parse_statement(f"{HELPERS}.MODE = {string_literal(mode).value}")
    assert isinstance(mode_line, cst.SimpleStatementLine)
    return helper_import, mode_line


class ModeTransformer(cst.CSTTransformer):
    """Base class of the workflow, step and client transformers."""

    mode: Mode

    def __init__(
        self,
        analysis: Analysis,
        imports: Mapping[cst.CSTNode, Replacement],
        path: str,
        rewrite_calls: bool = False,
    ) -> None:
        super().__init__()
        self.analysis = analysis
        self.imports = imports
        self.path = path
        self.rewrite_calls = rewrite_calls
        # the nodes whose leave handlers change something (a directive string needs no
        # visit: the function or module holding it strips it)
        interesting: list[cst.CSTNode] = [*analysis.targets, *analysis.classes, *imports]
        if rewrite_calls:
            interesting.extend(analysis.rewrites)
        # Only their ancestors are entered; the handlers of a node not entered still run
        # (with the original node), so a def whose body holds nothing to change is not
        # rebuilt child by child only to be replaced.
        parents = analysis.parents
        self.dirty = analysis.ancestors_and_self(
            parents[node] for node in interesting if node in parents
        )
        # statements to emit right after a statement of the original tree
        self.pending: dict[cst.CSTNode, list[cst.BaseStatement]] = {}
        # hoisted definitions (nested-step factories), emitted after the registrations
        self.hoisted: dict[cst.CSTNode, list[cst.BaseStatement]] = {}
        # new node -> original node, for nodes rebuilt only to move their leading lines
        self.origins: dict[cst.CSTNode, cst.CSTNode] = {}

    # -- traversal -----------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        """Enter only nodes with a descendant to change."""
        if node not in self.dirty:
            return False
        return super().on_visit(node)

    def on_leave(  # type: ignore[override]
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]:
        """Append the registrations queued for ``original_node`` after its replacement."""
        result = super().on_leave(original_node, updated_node)
        if isinstance(original_node, cst.BaseStatement):
            first = result.nodes[0] if isinstance(result, cst.FlattenSentinel) else result
            if isinstance(first, cst.CSTNode) and first is not original_node:
                self.origins.setdefault(first, original_node)
        extra = self.pending.pop(original_node, []) + self.hoisted.pop(original_node, [])
        if not extra:
            return result
        if isinstance(result, cst.FlattenSentinel):
            items = list(result.nodes)
        elif isinstance(result, cst.RemovalSentinel):
            items = []
        else:
            items = [result]
        return cst.FlattenSentinel([*items, *extra])

    def emit_after(
        self,
        anchor: cst.CSTNode,
        stmt: cst.BaseStatement,
        *,
        first: bool = False,
        hoisted: bool = False,
    ) -> None:
        """Queue ``stmt`` after ``anchor``.

        Args:
            anchor: a statement of the original tree.
            stmt: the statement to emit after it.
            first: put it before the registrations already queued.
            hoisted: a hoisted definition; these follow all registrations.
        """
        queue = (self.hoisted if hoisted else self.pending).setdefault(anchor, [])
        if first:
            queue.insert(0, stmt)
        else:
            queue.append(stmt)

    # -- node handlers ---------------------------------------------------------------
    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> NewStatement:
        """Strip the directive; let the mode decide what a marked function becomes."""
        updated_node = self.strip_function_directive(original_node, updated_node)
        if updated_node is not original_node:
            self.origins[updated_node] = original_node
        target = self.analysis.targets.get(original_node)
        if target is None:
            return updated_node
        return self.replace_target(target, updated_node)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> NewStatement:
        """Queue ``register_class`` after a serializable class."""
        serde = self.analysis.classes.get(original_node)
        if serde is not None:
            self.emit_after(original_node, self.register_class(serde), first=True)
        return updated_node

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> Replacement:
        """Apply this mode's import rewrite, if any."""
        return self.imports.get(original_node, updated_node)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> Replacement:
        """Apply this mode's import rewrite, if any."""
        return self.imports.get(original_node, updated_node)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        """Strip the module directive; add the header, helper import and ``MODE``."""
        body: list[cst.BaseStatement] = list(updated_node.body)
        if self.has_directive(original_node):
            body = self.strip_leading(body)
        index = 0
        if body and m.matches(body[0], _DOCSTRING):
            index = 1
        while index < len(body) and m.matches(body[index], _FUTURE):
            index += 1
        prelude: list[cst.SimpleStatementLine] = list(_prelude(self.mode))
        if index:
            prelude[0] = prelude[0].with_changes(leading_lines=[cst.EmptyLine()])
        if index < len(body):  # a blank line between the prelude and the user's code
            following = body[index]
            assert isinstance(following, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            if not following.leading_lines:
                spaced = following.with_changes(leading_lines=[cst.EmptyLine()])
                self.origins[spaced] = self.origins.get(following, following)
                body[index] = spaced
        header = cst.EmptyLine(
            comment=cst.Comment(
                f"# Generated by wfkit from {self.path} ({self.mode} mode). Do not edit."
            )
        )
        return updated_node.with_changes(
            header=[header, *updated_node.header],
            body=[*body[:index], *prelude, *body[index:]],
        )

    # -- mode hooks --------------------------------------------------------------------
    def replace_target(self, target: Target, node: cst.FunctionDef) -> NewStatement:
        """What a marked function becomes in this mode (the directive is already gone)."""
        raise NotImplementedError

    # -- building blocks -----------------------------------------------------------------
    def anchor(self, target: Target) -> cst.CSTNode:
        """The statement after which ``target``'s registration goes."""
        if target.class_node is not None:
            return target.class_node
        return target.node

    @staticmethod
    def reference(target: Target) -> cst.BaseExpression:
        """The expression naming ``target`` at module level (``fn`` or ``Cls.fn``)."""
        if target.class_node is not None:
            return cst.Attribute(
                value=cst.Name(target.class_node.name.value), attr=cst.Name(target.name)
            )
        return cst.Name(target.name)

    def register_class(self, serde: SerdeClass) -> cst.SimpleStatementLine:
        """``__wfkit__.register_class(ID, Cls)``."""
        return helper_statement("register_class", string_literal(serde.id), cst.Name(serde.name))

    def helper_call(
        self, helper: str, target: Target, method: bool = False
    ) -> cst.SimpleStatementLine:
        """``__wfkit__.<helper>(ID, <reference>[, method=True])``."""
        keywords = {"method": cst.Name("True")} if method else {}
        return helper_statement(
            helper, string_literal(target.id), self.reference(target), **keywords
        )

    def workflow_stub(self, target: Target, node: cst.FunctionDef) -> cst.FunctionDef:
        """``node`` with its body replaced by ``__wfkit__.workflow_called_directly(ID)``."""
        body: list[cst.BaseStatement] = []
        header: cst.TrailingWhitespace = cst.TrailingWhitespace()
        if isinstance(node.body, cst.IndentedBlock):
            header = node.body.header
            if node.body.body and m.matches(node.body.body[0], _DOCSTRING):
                body.append(node.body.body[0])
        body.append(helper_statement("workflow_called_directly", string_literal(target.id)))
        block = cst.IndentedBlock(body=body, header=header)
        return node.with_changes(body=block)

    # -- directive stripping ---------------------------------------------------------------
    def has_directive(self, original: cst.CSTNode) -> bool:
        """True when the analysed ``original`` module or function starts with a directive."""
        lead = leading_small_statements(original, 1)
        return bool(lead) and lead[0] in self.analysis.directive_exprs

    def strip_function_directive(
        self, original: cst.FunctionDef, node: cst.FunctionDef
    ) -> cst.FunctionDef:
        """``node`` without its directive statement (a following docstring becomes first)."""
        if not self.has_directive(original):
            return node
        body = node.body
        if isinstance(body, cst.SimpleStatementSuite):
            rest = list(body.body[1:]) or [cst.Pass()]
            return node.with_changes(body=body.with_changes(body=rest))
        assert isinstance(body, cst.IndentedBlock)
        stripped = self.strip_leading(list(body.body))
        if not stripped:
            stripped = [cst.SimpleStatementLine([cst.Pass()])]
        return node.with_changes(body=body.with_changes(body=stripped))

    def strip_leading(self, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """Remove the first small statement of ``body`` (the caller checked it is a directive)."""
        out = list(body)
        first = out[0]
        assert isinstance(first, cst.SimpleStatementLine)
        if len(first.body) > 1:
            out[0] = first.with_changes(body=list(first.body[1:]))
            self.origins[out[0]] = self.origins.get(first, first)
            return out
        del out[0]
        if out and first.leading_lines:
            following = out[0]
            assert isinstance(following, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            moved = following.with_changes(
                leading_lines=[*first.leading_lines, *following.leading_lines]
            )
            self.origins[moved] = self.origins.get(out[0], out[0])
            out[0] = moved
        return out
