"""What a directive is: a string-literal statement first in a module or function body."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import libcst as cst

__all__ = [
    "DIRECTIVES",
    "Kind",
    "edit_distance_is_one",
    "is_directive_like",
    "leading_small_statements",
    "string_value",
]

Kind = Literal["step", "workflow"]

DIRECTIVES: dict[str, Kind] = {"use step": "step", "use workflow": "workflow"}


def is_directive_like(text: str) -> bool:
    """True for a directive or a string within edit distance 1 of one."""
    return text in DIRECTIVES or any(edit_distance_is_one(text, real) for real in DIRECTIVES)


def edit_distance_is_one(a: str, b: str) -> bool:
    """True when one insertion, deletion or substitution turns ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long)):
        if long[:i] + long[i + 1 :] == short:
            return True
    return False


def string_value(node: cst.CSTNode) -> str | None:
    """The text of a string-literal expression statement, or None."""
    if type(node) is cst.Expr and type(node.value) is cst.SimpleString:  # cheap type tests
        assert isinstance(node, cst.Expr) and isinstance(node.value, cst.SimpleString)
        value = node.value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def leading_small_statements(owner: cst.CSTNode, limit: int = 2) -> list[cst.BaseSmallStatement]:
    """The first ``limit`` simple statements of a module or function/class body, in order."""
    if isinstance(owner, cst.Module):
        statements: Iterable[cst.CSTNode] = owner.body
    elif isinstance(owner, cst.FunctionDef | cst.ClassDef):
        if isinstance(owner.body, cst.SimpleStatementSuite):
            return list(owner.body.body[:limit])
        statements = owner.body.body
    else:
        return []
    out: list[cst.BaseSmallStatement] = []
    for stmt in statements:
        if not isinstance(stmt, cst.SimpleStatementLine):
            break
        out.extend(stmt.body)
        if len(out) >= limit:
            break
    return out[:limit]
