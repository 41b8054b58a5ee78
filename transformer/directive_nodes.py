"""Where a directive sits in a libcst tree: a string-literal statement first in a body."""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

__all__ = ["leading_small_statements", "string_value"]


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
