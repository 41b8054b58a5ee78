"""Client mode: what an application imports from a built wheel.

Step bodies are kept (calling a step outside a workflow just runs it) and tagged with
their ID; workflow bodies become the raising stub, tagged so ``start(fn)`` finds the ID.
Imports are left alone: the client module is loaded under its real name.
"""

from __future__ import annotations

import libcst as cst

from wfkit.transformer.discovery import Target
from wfkit.transformer.modes import ModeTransformer, NewStatement

__all__ = ["ClientModeTransformer"]


class ClientModeTransformer(ModeTransformer):
    """Tags steps, stubs and tags workflows."""

    mode = "client"

    def replace_target(self, target: Target, node: cst.FunctionDef) -> NewStatement:
        """Client mode: steps kept and tagged, workflows stubbed and tagged."""
        if target.kind == "workflow":
            self.emit_after(
                self.anchor(target),
                self.helper_call("tag_workflow", target),
            )
            return self.workflow_stub(target, node)
        if not target.nested:
            self.emit_after(
                self.anchor(target),
                self.helper_call("tag_step", target),
            )
        return node
