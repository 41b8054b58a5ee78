"""Error fixtures: every diagnostic kind, rendered compiler-style and snapshotted."""

from __future__ import annotations

import pytest
from snapshot_support import ERRORS, transform_case
from syrupy.assertion import SnapshotAssertion

from wfkit.transformer.diagnostics import CODES

CASES = sorted(p.name for p in ERRORS.iterdir() if (p / "input.py").is_file())


@pytest.mark.parametrize("case", CASES)
def test_error_fixture(case: str, diagnostics_snapshot: SnapshotAssertion) -> None:
    _, result = transform_case(case, ERRORS)
    assert result.diagnostics, "an error fixture must produce diagnostics"
    assert not result.ok
    assert (result.workflow, result.step, result.client) == (None, None, None)
    rendered = "\n".join(d.render() for d in result.diagnostics) + "\n"
    assert rendered == diagnostics_snapshot(name="diagnostics")


def test_every_code_has_a_fixture() -> None:
    errors = {d.code for case in CASES for d in transform_case(case, ERRORS)[1].diagnostics}
    warnings = {d.code for d in transform_case("cross_module_imports")[1].diagnostics}
    assert errors | warnings == set(CODES)
    assert warnings == {"WF012"}


def test_all_errors_of_a_file_are_reported() -> None:
    _, result = transform_case("multiple_errors", ERRORS)
    assert [(d.line, d.code) for d in result.diagnostics] == [
        (4, "WF001"),
        (9, "WF003"),
        (14, "WF009"),
        (16, "WF002"),
        (17, "WF010"),
        (21, "WF007"),
    ]


def test_forbidden_calls_each_say_what_to_use_instead() -> None:
    _, result = transform_case("forbidden_io", ERRORS)
    messages = [d.message for d in result.diagnostics]
    assert len(messages) == 14
    assert all(d.code == "WF009" for d in result.diagnostics)
    assert any("await sleep(...)" in m for m in messages)
    assert any("await fetch(...)" in m for m in messages)
    assert all("use step" in m or "from wfkit" in m for m in messages)


def test_diagnostics_carry_the_source_line() -> None:
    _, result = transform_case("misspelled_step_directive", ERRORS)
    (diagnostic,) = result.diagnostics
    assert (diagnostic.line, diagnostic.column) == (2, 5)
    assert diagnostic.source_line == '    "use stepp"'
