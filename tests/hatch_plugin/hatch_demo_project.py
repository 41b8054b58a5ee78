"""A throwaway project whose wheel build uses the ``wfkit`` hook (shared by the hatch tests)."""

from __future__ import annotations

from pathlib import Path

FLOWS = """\
from demoapp.util import double


async def add_one(x: int) -> int:
    "use step"
    return double(x) // 2 + 1


async def pipeline(x: int) -> int:
    "use workflow"
    return await add_one(await add_one(x))
"""

UTIL = """\
def double(x: int) -> int:
    return 2 * x
"""


def write_project(root: Path, *, requires: str = '"hatchling"', hook: str = "") -> Path:
    """Write a project ``demoapp`` whose wheel build uses the ``wfkit`` hook."""
    (root / "demoapp").mkdir(parents=True)
    (root / "demoapp" / "__init__.py").write_text("")
    (root / "demoapp" / "flows.py").write_text(FLOWS)
    (root / "demoapp" / "util.py").write_text(UTIL)
    (root / "pyproject.toml").write_text(
        "[build-system]\n"
        f"requires = [{requires}]\n"
        'build-backend = "hatchling.build"\n\n'
        '[project]\nname = "demo-app"\nversion = "0.0.1"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["demoapp"]\n\n'
        f"[tool.hatch.build.hooks.wfkit]\n{hook}"
    )
    return root
