"""Workflow mode: the replay bundle.

Workflow bodies are kept and registered; every step ``def`` is replaced in place by a
step proxy (nested steps also capture their closure); non-deterministic calls inside
workflow bodies go through ``__wfkit__.deterministic``; imports of other workflow modules
are redirected to their workflow-mode twins.
"""

from __future__ import annotations

import libcst as cst

from wfkit.transformer.discovery import Target
from wfkit.transformer.modes import ModeTransformer, NewStatement, helper_call_expr, string_literal

__all__ = ["WorkflowModeTransformer"]


class WorkflowModeTransformer(ModeTransformer):
    """Keeps workflows, proxies steps, rewrites non-deterministic calls."""

    mode = "workflow"

    def replace_target(self, target: Target, node: cst.FunctionDef) -> NewStatement:
        """Workflow mode: workflows kept and registered, steps replaced by proxies."""
        if target.kind == "workflow":
            self.emit_after(
                self.anchor(target),
                self.helper_call("register_workflow", target),
            )
            return node
        keywords: dict[str, cst.BaseExpression] = {}
        if target.closure:
            items = ", ".join(f"{json_name(v)}: {v}" for v in target.closure)
            keywords["closure"] = cst.parse_expression(f"lambda: {{{items}}}")
        if target.method == "instance":
            keywords["method"] = cst.Name("True")
        call = helper_call_expr(
            "step_proxy", string_literal(target.id), string_literal(target.key), **keywords
        )
        assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(target.name))], value=call)
        return cst.SimpleStatementLine(body=[assign], leading_lines=node.leading_lines)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """Route a non-deterministic call in a workflow body through its replay-safe twin."""
        name = self.analysis.rewrites.get(original_node) if self.rewrite_calls else None
        if name is None:
            return updated_node
        return updated_node.with_changes(
            func=helper_call_expr("deterministic", string_literal(name))
        )


def json_name(name: str) -> str:
    """``name`` as a double-quoted dict key."""
    return string_literal(name).value
