"""What the directives are and how they are spelled; plain text, no libcst.

wfbuild's file discovery asks :func:`is_directive_like` of string literals before anything
is parsed, so this module must stay importable without libcst (a build with nothing to
do never loads it). Where a directive sits in a tree is :mod:`directive_nodes`.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DIRECTIVES", "Kind", "edit_distance_is_one", "is_directive_like"]

Kind = Literal["step", "workflow"]

DIRECTIVES: dict[str, Kind] = {"use step": "step", "use workflow": "workflow"}
"""Each directive's text and the kind of function it marks."""


def is_directive_like(text: str) -> bool:
    """True for a directive or a string within edit distance 1 of one (a misspelling the
    transform reports as WF003)."""
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
