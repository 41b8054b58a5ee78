"""Workflow mode: the replay bundle.

Workflow bodies are kept and registered; every step ``def`` is replaced in place by a
step proxy (nested steps also capture their closure); non-deterministic calls inside
workflow bodies go through ``__wfkit__.deterministic``; imports of other workflow modules
are redirected to their workflow-mode twins.
"""

from __future__ import annotations

import libcst as cst

from transformer.discovery import Target
from transformer.modes import HELPERS, ModeTransformer, NewStatement, statement, string_literal

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
        args = ""
        parts: dict[str, cst.BaseExpression] = {
            "id": string_literal(target.id),
            "key": string_literal(target.key),
        }
        if target.closure:
            items = ", ".join(f"{json_name(v)}: {v}" for v in target.closure)
            parts["closure"] = cst.parse_expression(f"lambda: {{{items}}}")
            args += ", closure={closure}"
        if target.method == "instance":
            args += ", method=True"
        proxy = statement(f"{target.name} = {HELPERS}.step_proxy({{id}}, {{key}}{args})", **parts)
        return proxy.with_changes(leading_lines=node.leading_lines)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """Route a non-deterministic call in a workflow body through its replay-safe twin."""
        name = self.analysis.rewrites.get(original_node) if self.rewrite_calls else None
        if name is None:
            return updated_node
        twin = cst.parse_expression(f"{HELPERS}.deterministic({string_literal(name).value})")
        return updated_node.with_changes(func=twin)


def json_name(name: str) -> str:
    """``name`` as a double-quoted dict key."""
    return string_literal(name).value
