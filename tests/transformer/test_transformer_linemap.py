"""Line maps: kept user lines trace back to their original line numbers."""

from __future__ import annotations

import ast

from wfkit.transformer import MODES, transform_module

SOURCE = '''"""Docs."""
from __future__ import annotations

import time


async def charge(cents: int) -> int:
    # why
    "use step"
    total = cents * 2
    return total


async def checkout(cents: int) -> int:
    "use workflow"
    started = time.time()
    paid = await charge(cents)
    return paid + int(started)
'''


def _original_line(line_map: tuple[tuple[int, int, int], ...], line: int) -> int | None:
    for gen, orig, count in line_map:
        if gen <= line < gen + count:
            return orig + line - gen
    return None


def _line_of(code: str, text: str) -> int:
    return next(i for i, line in enumerate(code.splitlines(), 1) if line.strip() == text)


def test_kept_lines_map_to_their_original_lines() -> None:
    result = transform_module(SOURCE, path="app/pay.py", module="app.pay")
    assert result.step is not None and result.workflow is not None
    step = result.step
    assert _original_line(step.line_map, _line_of(step.code, "total = cents * 2")) == 10
    assert _original_line(step.line_map, _line_of(step.code, "return total")) == 11
    wf = result.workflow
    assert _original_line(wf.line_map, _line_of(wf.code, "paid = await charge(cents)")) == 17
    # a line whose call was rewritten still maps to where it came from
    rewritten = 'started = __wfkit__.deterministic("time.time")()'
    assert _original_line(wf.line_map, _line_of(wf.code, rewritten)) == 16
    assert _original_line(wf.line_map, _line_of(wf.code, '"""Docs."""')) == 1


def test_generated_helper_lines_are_unmapped() -> None:
    result = transform_module(SOURCE, path="app/pay.py", module="app.pay")
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        line = _line_of(generated.code, "import wfkit.runtime.gen as __wfkit__")
        assert _original_line(generated.line_map, line) is None


def test_line_map_statement_matches_the_returned_map() -> None:
    result = transform_module(SOURCE, path="app/pay.py", module="app.pay")
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        tree = ast.parse(generated.code)
        last = tree.body[-1]
        assert isinstance(last, ast.Assign)
        assert ast.unparse(last.targets[0]) == "__wfkit_line_map__"
        assert ast.literal_eval(last.value) == generated.line_map


def test_runs_are_sorted_and_disjoint() -> None:
    result = transform_module(SOURCE, path="app/pay.py", module="app.pay")
    for mode in MODES:
        generated = result.generated(mode)
        assert generated is not None
        ends = 0
        for gen, _orig, count in generated.line_map:
            assert gen >= ends
            ends = gen + count
