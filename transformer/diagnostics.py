"""Diagnostic codes and constructors.

Every problem the transform finds is a :class:`~wfkit.transformer.result.Diagnostic` with one of
the codes below; all problems of a file are collected before the transform gives up.
"""

from __future__ import annotations

from typing import Literal

from wfkit.transformer.result import Diagnostic

__all__ = ["CODES", "DiagnosticSink"]

CODES: dict[str, str] = {
    "WF000": "the source does not parse",
    "WF001": "a directive on a function that is not `async def`",
    "WF002": "a directive that is not the first statement of its function or module",
    "WF003": "a misspelled directive (edit distance 1 from a real one)",
    "WF004": "both directives on one function or module",
    "WF005": "a directive in an unsupported place (class body, nested class, nested workflow)",
    "WF006": "a step that is an async generator",
    "WF007": "an instance-method step on a class that is not serializable",
    "WF008": "a workflow that is an instance method",
    "WF009": "I/O, threads or processes inside a workflow",
    "WF010": "`yield` inside a workflow",
    "WF011": "a class with __wfkit_serialize__ inside a function or class (cannot be registered)",
    "WF012": "warning: a bare import shares its top-level name with a redirected one",
    "WF013": "`nonlocal` in a nested step",
    "WF014": "two definitions in one file that would get the same ID",
    "WF015": "a nested step whose closure holds a function, class or module",
}
"""Every diagnostic code, with what it means."""


class DiagnosticSink:
    """Collects diagnostics for one file, filling in the offending source line."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self._lines = source.splitlines()
        self.items: list[Diagnostic] = []

    def error(self, code: str, line: int, column: int, message: str) -> None:
        """Record an error at 1-based ``line`` and ``column``."""
        self._add(code, line, column, message, "error")

    def warning(self, code: str, line: int, column: int, message: str) -> None:
        """Record a warning (it does not stop code generation)."""
        self._add(code, line, column, message, "warning")

    @property
    def has_errors(self) -> bool:
        """True when any error (not warning) was recorded."""
        return any(d.severity == "error" for d in self.items)

    def _add(
        self, code: str, line: int, column: int, message: str, severity: Literal["error", "warning"]
    ) -> None:
        assert code in CODES, code
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        self.items.append(
            Diagnostic(self.path, line, column, code, message, source_line=text, severity=severity)
        )

    def sorted(self) -> tuple[Diagnostic, ...]:
        """The diagnostics in source order (line, column, code), duplicates removed."""
        unique = {(d.line, d.column, d.code, d.message): d for d in self.items}
        return tuple(unique[k] for k in sorted(unique))
