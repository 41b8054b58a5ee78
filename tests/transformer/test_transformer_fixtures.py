"""Fixture cases: every mode's generated code and the manifest fragment, snapshotted."""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_support import FIXTURES, case_path, fragment, transform_case
from syrupy.assertion import SnapshotAssertion

from wfkit.transformer import MODES

CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "input.py").is_file())


@pytest.mark.parametrize("case", CASES)
def test_fixture(
    case: str, py_snapshot: SnapshotAssertion, json_snapshot: SnapshotAssertion
) -> None:
    _, result = transform_case(case)
    assert result.ok, [d.render() for d in result.diagnostics]
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        assert generated.code == py_snapshot(name=mode)
    assert fragment(result) == json_snapshot(name="manifest")


@pytest.mark.parametrize("case", CASES)
def test_generated_code_compiles(case: str) -> None:
    _, result = transform_case(case)
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        compile(generated.code, f"{mode}/{case_path(case)}", "exec")


@pytest.mark.parametrize("case", CASES)
def test_line_map_points_at_identical_lines(case: str) -> None:
    """Every line a run maps is the same text in the generated and the original module,
    except where a call or import was rewritten on that line."""
    source, result = transform_case(case)
    original = source.splitlines()
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        lines = generated.code.splitlines()
        for gen, orig, count in generated.line_map:
            assert count >= 1
            for i in range(count):
                new, old = lines[gen - 1 + i].strip(), original[orig - 1 + i].strip()
                if new != old:
                    assert "__wfkit" in new or "import" in new or "def " in old, (mode, gen + i)


def test_fixture_count() -> None:
    assert len(CASES) >= 25


def test_case_dirs_are_named_like_snapshots() -> None:
    for case in CASES:
        assert Path(FIXTURES / case).name == case
