"""Explaining a ``RecursionError`` from the encoder: find the cycle, or say it is too deep."""

from __future__ import annotations

import collections
import dataclasses
import sys
from typing import Any

from wfkit.runtime.errors import SerializationError
from wfkit.runtime.serialization._common import qualified_name
from wfkit.runtime.serialization._encode import key_text


def recursion_error(value: Any, root: str) -> SerializationError:
    """Explain a RecursionError: find the cycle (iteratively), else say it is too deep."""
    # Paths are kept as parent links and spelled out only for the cycle found, so a
    # very deep value costs linear time.
    links: list[tuple[int, str]] = [(-1, root)]
    stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
    on_path: set[int] = set()
    done: set[int] = set()
    while stack:
        obj, node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(obj))
            done.add(id(obj))
            continue
        if id(obj) in on_path:
            type_name = qualified_name(type(obj))
            path = _spell_path(links, node)
            return SerializationError(
                f"cannot serialize {type_name} at {path}: the value contains itself (a cycle); "
                "durable values must be trees",
                type_name=type_name,
                path=path,
            )
        if id(obj) in done:
            continue
        children = _children(obj)
        if not children:
            continue
        on_path.add(id(obj))
        stack.append((obj, node, True))
        for child, segment in reversed(children):
            links.append((node, segment))
            stack.append((child, len(links) - 1, False))
    type_name = qualified_name(type(value))
    return SerializationError(
        f"cannot serialize {type_name} at {root}: nested too deeply (or a cycle through "
        "__wfkit_serialize__)",
        type_name=type_name,
        path=root,
    )


def _spell_path(links: list[tuple[int, str]], node: int) -> str:
    parts: list[str] = []
    while node >= 0:
        node, segment = links[node]
        parts.append(segment)
    return "".join(reversed(parts))


def _children(obj: Any) -> list[tuple[Any, str]]:
    """The parts of a value ``serialize`` recurses into, with their path segments."""
    if isinstance(obj, dict):
        out: list[tuple[Any, str]] = []
        for k, x in obj.items():
            seg = key_text(k)
            out.append((k, f"<key {seg}>"))
            out.append((x, f"[{seg}]"))
        return out
    if isinstance(obj, list | tuple | set | frozenset | collections.deque):
        return [(x, f"[{i}]") for i, x in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(getattr(obj, f.name), f".{f.name}") for f in dataclasses.fields(obj)]
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        return [(getattr(obj, n), f".{n}") for n in type(obj).model_fields]
    if isinstance(obj, BaseException):
        out = [(x, f".args[{i}]") for i, x in enumerate(obj.args)]
        if obj.__cause__ is not None:
            out.append((obj.__cause__, ".__cause__"))
        return out
    return []
