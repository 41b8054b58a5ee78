"""A small project built at two versions, for the deployment tests.

``models.py`` holds a dataclass with a method step (which calls ``super()``: it fails
if the step runs with another class than its instance's) and a ``VERSION``;
``flows.py`` a workflow that sleeps then finishes through that method, a parent that
starts a child run, and a workflow whose step fails; ``helpers.py`` has no directives.
v2 inserts a step before the sleep, as in SCENARIOS.md 35.
"""

from __future__ import annotations

import uuid
from pathlib import Path

MODELS = """\
from dataclasses import dataclass

VERSION = "{version}"


@dataclass
class Box:
    label: str

    async def grow(self, extra: str) -> "Box":
        "use step"
        super().__repr__()
        return Box(f"{{self.label}}{{extra}}@{{VERSION}}")
"""

FLOWS_V1 = """\
from wfkit import sleep, start

from {package}.helpers import shout
from {package}.models import VERSION, Box


async def finish(box: Box) -> Box:
    "use step"
    if not isinstance(box, Box):
        raise TypeError(f"finish got a {{type(box)!r}}, not the Box it imported")
    return await box.grow("!")


async def fail_here(n: int) -> int:
    "use step"
    raise ValueError(f"failed in {{VERSION}}")


fail_here.max_retries = 0


async def rollout(n: int) -> dict:
    "use workflow"
    await sleep(0.05)
    box = await finish(Box(shout(str(n))))
    return {{"box": box, "version": VERSION}}


async def child(n: int) -> str:
    "use workflow"
    return f"child {{n}} on {{VERSION}}"


async def spawn(n: int) -> str:
    "use workflow"
    run = await start(child, n)
    return run.run_id


async def breaks(n: int) -> int:
    "use workflow"
    return await fail_here(n)
"""

FLOWS_V2 = FLOWS_V1.replace(
    """async def rollout(n: int) -> dict:
    "use workflow"
    await sleep(0.05)""",
    """async def prepare(n: int) -> int:
    "use step"
    return n * 10


async def rollout(n: int) -> dict:
    "use workflow"
    n = await prepare(n)
    await sleep(0.05)""",
)

HELPERS = """\
def shout(text: str) -> str:
    return text + "{mark}"
"""


def unique_package() -> str:
    return f"dpl_{uuid.uuid4().hex[:10]}"


def write_version(root: Path, package: str, version: str, *, helper_mark: str = "") -> None:
    """Write the project at ``version`` ("v1" or "v2") under ``root``."""
    pkg = root / package
    pkg.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\nversion = "1"\n')
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODELS.format(version=version))
    flows = FLOWS_V1 if version == "v1" else FLOWS_V2
    (pkg / "flows.py").write_text(flows.format(package=package))
    (pkg / "helpers.py").write_text(HELPERS.format(mark=helper_mark))


def build(root: Path, out: Path | None = None) -> Path:
    """Build the project (default into ``<root>/.wfkit/build``); returns the build directory."""
    import wfbuild

    target = out or root / ".wfkit" / "build"
    wfbuild.build(root=root, out=target)
    return target
