"""Step mode: the step entrypoints.

Step bodies are kept and registered by ID; workflow bodies become the stub that raises
"use start()"; a step nested in a function is hoisted as a module-level factory that
takes the closure variables and returns the step function.
"""

from __future__ import annotations

import libcst as cst

from wfkit.transformer.discovery import Target
from wfkit.transformer.modes import ModeTransformer, NewStatement, helper_statement, string_literal

__all__ = ["StepModeTransformer", "factory_name"]


def factory_name(key: str) -> str:
    """The hoisted factory of nested step ``outer/inner``: ``__wfkit_step_outer__inner``."""
    return "__wfkit_step_" + key.replace("/", "__").replace(".", "_").replace("#", "_")


class StepModeTransformer(ModeTransformer):
    """Keeps and registers steps, stubs workflows, hoists nested steps."""

    mode = "step"

    def replace_target(self, target: Target, node: cst.FunctionDef) -> NewStatement:
        """Step mode: steps kept and registered (nested ones hoisted), workflows stubbed."""
        if target.kind == "workflow":
            self.emit_after(
                self.anchor(target),
                self.helper_call("tag_workflow", target),
            )
            return self.workflow_stub(target, node)
        if target.nested:
            assert target.top is not None
            name = factory_name(target.key)
            inner = node.with_changes(leading_lines=())
            self.origins[inner] = self.origins.get(node, node)
            factory = cst.FunctionDef(
                name=cst.Name(name),
                params=cst.Parameters(params=[cst.Param(cst.Name(v)) for v in target.closure]),
                body=cst.IndentedBlock(
                    body=[inner, cst.SimpleStatementLine([cst.Return(cst.Name(target.name))])]
                ),
                leading_lines=[cst.EmptyLine()],
            )
            self.emit_after(target.top, factory, hoisted=True)
            self.emit_after(
                target.top,
                helper_statement(
                    "register_step_factory", string_literal(target.id), cst.Name(name)
                ),
                hoisted=True,
            )
            return node
        self.emit_after(
            self.anchor(target),
            self.helper_call("register_step", target, method=target.method == "instance"),
        )
        return node
