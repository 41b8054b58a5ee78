"""Typed results of the transform: generated code per mode, IDs and diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["workflow", "step", "client"]
MODES: tuple[Mode, ...] = ("workflow", "step", "client")

LineMap = tuple[tuple[int, int, int], ...]
"""(generated_start_line, original_start_line, line_count) runs; empty = identity."""


@dataclass(frozen=True)
class Diagnostic:
    """A compiler-style problem report: ``path:line:col: error[CODE]: message``."""

    path: str
    line: int
    column: int  # 1-based
    code: str
    message: str
    source_line: str = ""
    severity: Literal["error", "warning"] = "error"

    def render(self) -> str:
        """The compiler-style text: head line, then the source line and a caret."""
        head = (
            f"{self.path}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"
        )
        if not self.source_line:
            return head
        caret = " " * (self.column - 1) + "^"
        return f"{head}\n    {self.source_line}\n    {caret}"


@dataclass(frozen=True)
class GeneratedModule:
    """One mode's generated source and its line map back to the original."""

    code: str
    line_map: LineMap = ()


@dataclass(frozen=True)
class TransformResult:
    """Everything ``transform_module`` learned about one source file."""

    path: str
    module: str
    workflow: GeneratedModule | None
    step: GeneratedModule | None
    client: GeneratedModule | None
    workflows: dict[str, str] = field(default_factory=dict)  # qualname key -> workflow id
    steps: dict[str, str] = field(default_factory=dict)  # qualname key -> step id
    classes: dict[str, str] = field(default_factory=dict)  # class name -> class id
    diagnostics: tuple[Diagnostic, ...] = ()
    has_directives: bool = False

    @property
    def ok(self) -> bool:
        """True when there is no error diagnostic (warnings allowed)."""
        return not any(d.severity == "error" for d in self.diagnostics)

    def generated(self, mode: Mode) -> GeneratedModule | None:
        """The generated module of ``mode`` (None when the file has errors)."""
        return {"workflow": self.workflow, "step": self.step, "client": self.client}[mode]
