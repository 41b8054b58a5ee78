"""Generated statements are built as nodes; they must print exactly as their source text."""

from __future__ import annotations

import libcst as cst

from wfkit.transformer.imports import _dotted
from wfkit.transformer.modes import helper_call_expr, helper_statement, string_literal


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def test_helper_statement_prints_like_its_source() -> None:
    stmt = helper_statement("register_step", string_literal("step//./a//f"), cst.Name("f"))
    assert _code(stmt) == '__wfkit__.register_step("step//./a//f", f)\n'
    method = helper_statement(
        "tag_step",
        string_literal("x"),
        cst.Attribute(cst.Name("C"), cst.Name("m")),
        method=cst.Name("True"),
    )
    assert _code(method) == '__wfkit__.tag_step("x", C.m, method=True)\n'


def test_helper_call_prints_like_its_source() -> None:
    call = helper_call_expr("deterministic", string_literal("time.time"))
    assert _code(call) == '__wfkit__.deterministic("time.time")'
    assert _code(helper_call_expr("f")) == "__wfkit__.f()"


def test_dotted_names() -> None:
    assert _code(_dotted("a")) == "a"
    assert _code(_dotted("__wfkit_workflow__.app.billing")) == "__wfkit_workflow__.app.billing"
