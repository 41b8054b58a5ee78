"""Snapshot plumbing and case loading for the transformer tests.

Generated code is snapshotted as real ``.py`` files (and manifest fragments as ``.json``)
under the top-level ``snapshots/transformer/<case>/``, one file per mode, so reviewers read
them like code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation
from syrupy.types import SerializableData, SnapshotIndex

from wfkit.transformer import TransformResult, transform_module

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "snapshots" / "transformer"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ERRORS = Path(__file__).resolve().parent / "errors"


def _case(test_location: PyTestLocation) -> str:
    callspec = getattr(test_location.item, "callspec", None)
    if callspec is None or "case" not in callspec.params:
        return "__not_a_case__"  # syrupy also asks about unrelated tests during discovery
    return str(callspec.params["case"])


class _CaseFileExtension(SingleFileSnapshotExtension):
    """One text file per named snapshot, in ``snapshots/transformer/<case>/``."""

    _write_mode = WriteMode.TEXT
    subdir = ""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS / cls.subdir / _case(test_location))

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0) -> str:
        return str(index)

    def serialize(self, data: SerializableData, **kwargs: Any) -> str:
        return str(data)

    @classmethod
    def write_snapshot(cls, **kwargs: Any) -> None:
        # Our files are named by mode (workflow.py), not after the test, by design; syrupy
        # warns that it cannot relate them to the test, and warnings are errors here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Can not relate snapshot")
            super().write_snapshot(**kwargs)


class PythonSnapshot(_CaseFileExtension):
    _file_extension = "py"
    file_extension = "py"


class JsonSnapshot(_CaseFileExtension):
    _file_extension = "json"
    file_extension = "json"

    def serialize(self, data: SerializableData, **kwargs: Any) -> str:
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


class DiagnosticsSnapshot(_CaseFileExtension):
    _file_extension = "txt"
    file_extension = "txt"
    subdir = "errors"


def fragment(result: TransformResult) -> dict[str, Any]:
    """The manifest fragment of a result, as snapshotted."""
    return {
        "has_directives": result.has_directives,
        "workflows": result.workflows,
        "steps": result.steps,
        "classes": result.classes,
        "warnings": [
            f"{d.line}:{d.column}: {d.code}: {d.message}"
            for d in result.diagnostics
            if d.severity == "warning"
        ],
    }


def case_options(case: str) -> dict[str, Any]:
    """``options.json`` of a fixture case: ``path``, ``module``, ``workflow_modules``."""
    options = FIXTURES / case / "options.json"
    loaded: dict[str, Any] = json.loads(options.read_text()) if options.is_file() else {}
    return loaded


def case_path(case: str, base: Path = FIXTURES) -> str:
    """The root-relative path a case is transformed as (``app/<case>.py`` by default)."""
    options = case_options(case) if base == FIXTURES else {}
    return str(options.get("path", f"app/{case}.py"))


def transform_case(case: str, base: Path = FIXTURES) -> tuple[str, TransformResult]:
    """Transform ``<base>/<case>/input.py``; returns the source and the result."""
    options = case_options(case) if base == FIXTURES else {}
    path = case_path(case, base)
    module = str(options.get("module", path.removesuffix(".py").replace("/", ".")))
    source = (base / case / "input.py").read_text()
    return source, transform_module(
        source,
        path=path,
        module=module,
        workflow_modules=frozenset(options.get("workflow_modules", [])),
    )
