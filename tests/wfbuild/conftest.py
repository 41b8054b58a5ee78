"""Fixtures for the wfbuild tests: throwaway projects."""

from __future__ import annotations

from pathlib import Path

import pytest

ORDER = """\
async def charge(order_id: str, cents: int) -> str:
    "use step"
    return f"receipt-{order_id}-{cents}"


async def checkout(order_id: str) -> dict:
    "use workflow"
    receipt = await charge(order_id, 1999)
    return {"receipt": receipt}
"""

SHIPPING = """\
from app.order import charge


async def ship(order_id: str) -> str:
    "use step"
    return "shipped"


async def deliver(order_id: str) -> str:
    "use workflow"
    await charge(order_id, 1)
    return await ship(order_id)
"""

HELPERS = """\
def add(a: int, b: int) -> int:
    return a + b
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: two workflow modules, a helper module and a pyproject.toml."""
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "order.py").write_text(ORDER)
    (root / "app" / "shipping.py").write_text(SHIPPING)
    (root / "app" / "helpers.py").write_text(HELPERS)
    return root
