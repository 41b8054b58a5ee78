"""The merged manifest: shape (ARCHITECTURE.md §1) and byte stability."""

from __future__ import annotations

import json

import pytest

from wfkit.transformer import build_manifest, dump_manifest, transform_module

ORDER = """
async def charge(order_id: str) -> str:
    "use step"
    return order_id


async def checkout(order_id: str) -> str:
    "use workflow"
    return await charge(order_id)


class Point:
    def __wfkit_serialize__(self):
        return {}

    @classmethod
    def __wfkit_deserialize__(cls, data):
        return cls()
"""


def _order() -> object:
    return transform_module(ORDER, path="examples/order.py", module="examples.order")


def test_manifest_shape() -> None:
    plain = transform_module("x = 1\n", path="examples/plain.py", module="examples.plain")
    manifest = build_manifest([_order(), plain])  # type: ignore[list-item]
    where = {
        "module": "examples.order",
        "workflow": "workflow/examples/order.py",
        "step": "step/examples/order.py",
        "client": "client/examples/order.py",
    }
    assert manifest == {
        "version": "1",
        "workflows": {
            "examples/order.py": {
                "checkout": {"id": "workflow//./examples/order//checkout", **where}
            }
        },
        "steps": {
            "examples/order.py": {"charge": {"id": "step//./examples/order//charge", **where}}
        },
        "classes": {
            "examples/order.py": {"Point": {"id": "class//./examples/order//Point", **where}}
        },
    }


def test_dump_is_byte_stable() -> None:
    first = dump_manifest(build_manifest([_order()]))  # type: ignore[list-item]
    second = dump_manifest(json.loads(first))
    assert first == second
    assert first.endswith("}\n")
    assert first.splitlines()[1].startswith('  "')  # two-space indent
    assert list(json.loads(first)) == sorted(json.loads(first))


def test_manifest_refuses_results_with_errors() -> None:
    broken = transform_module(
        'def f():\n    "use step"\n', path="examples/bad.py", module="examples.bad"
    )
    with pytest.raises(ValueError, match=r"examples/bad\.py"):
        build_manifest([broken])
