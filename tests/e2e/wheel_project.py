"""A throwaway user project, ``myapp``, as a new user would write it: a pyproject with the
wfkit Hatch hook, workflows and steps in two modules, and one value of each class kind
wfkit serializes (a dataclass with a method step, a pydantic model, a class with
``__wfkit_serialize__``, an exception).

Shared by the installed-wheel end-to-end test and the loader / serializer unit tests
(which give the package a unique name, since they load it into the test process).
"""

from __future__ import annotations

import uuid
from pathlib import Path

MODELS = '''\
"""Values that cross durable boundaries: one of each kind wfkit serializes."""

from dataclasses import dataclass, replace

from pydantic import BaseModel


@dataclass
class Parcel:
    label: str
    weight: int

    async def heavier(self, extra: int) -> "Parcel":
        "use step"
        super().__repr__()  # a TypeError if the step ran with another class than self's
        return replace(self, weight=self.weight + extra)


class Quote(BaseModel):
    label: str
    cents: int


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __wfkit_serialize__(self) -> dict:
        return {"cents": self.cents}

    @classmethod
    def __wfkit_deserialize__(cls, data: dict) -> "Money":
        return cls(data["cents"])


class Overweight(Exception):
    def __init__(self, label: str, weight: int) -> None:
        super().__init__(label, weight)
        self.label = label
        self.weight = weight


async def weigh(parcel: Parcel) -> int:
    "use step"
    if not isinstance(parcel, Parcel):
        raise TypeError(f"weigh got a {type(parcel)!r}, not the Parcel it imported")
    return parcel.weight
'''

JOBS = '''\
"""Workflows and steps that pass the classes of models.py around."""

from myapp.models import Money, Overweight, Parcel, Quote, weigh


def kinds(*values: object) -> list[bool]:
    """Whether each value is an instance of the class this module imported, in order."""
    return [isinstance(v, c) for v, c in zip(values, (Parcel, Quote, Money, Overweight))]


async def pack(n: int) -> Parcel:
    "use step"
    return Parcel(label=f"p{n}", weight=n)


async def price(parcel: Parcel, quote: Quote, money: Money) -> dict:
    "use step"
    if parcel.weight > 100:
        raise Overweight(parcel.label, parcel.weight)
    return {
        "quote": Quote(label=parcel.label, cents=money.cents + quote.cents),
        "step_sees": kinds(parcel, quote, money),
    }


price.max_retries = 0


async def pipeline(n: int) -> dict:
    "use workflow"
    parcel = await pack(n)
    heavier = await parcel.heavier(1)
    weight = await weigh(heavier)
    priced = await price(heavier, Quote(label="base", cents=weight), Money(100))
    try:
        await price(Parcel("big", 1000), priced["quote"], Money(0))
        caught = None
    except Overweight as exc:  # the step's exception, as the class this module imported
        caught = exc
    return {
        "parcel": heavier,
        "quote": priced["quote"],
        "money": Money(weight),
        "error": caught,
        "step_sees": priced["step_sees"],
        "workflow_sees": kinds(heavier, priced["quote"], Money(1), caught),
    }


async def too_heavy(n: int) -> dict:
    "use workflow"
    return await price(Parcel("huge", n), Quote(label="q", cents=1), Money(1))


async def call_step(step, parcel: Parcel) -> int:
    "use step"
    return await step(parcel)


async def apply(step, parcel: Parcel) -> int:
    "use workflow"
    return await call_step(step, parcel)
'''

PYPROJECT = """\
[build-system]
requires = ["hatchling", "wfkit"]
build-backend = "hatchling.build"

[project]
name = "{package}"
version = "1.0.0"
dependencies = ["wfkit", "pydantic"]

[tool.hatch.build.targets.wheel]
packages = ["{package}"]

[tool.hatch.build.hooks.wfkit]
paths = ["{package}"]
"""


def write_project(root: Path, package: str = "myapp") -> Path:
    """Write the project under ``root`` with its package named ``package``; returns ``root``."""
    source = root / package
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "models.py").write_text(MODELS)
    (source / "jobs.py").write_text(JOBS.replace("from myapp.", f"from {package}."))
    (root / "pyproject.toml").write_text(PYPROJECT.format(package=package))
    return root


def unique_package() -> str:
    """A package name no other test uses (tests that load a build into the test process
    share its module, registry and import caches)."""
    return f"wfapp_{uuid.uuid4().hex[:10]}"


def build_project(root: Path) -> Path:
    """Build the project with wfbuild into ``<root>/.wfkit/build``; returns that directory."""
    import wfbuild

    wfbuild.build(root=root, jobs=1)
    return root / ".wfkit" / "build"
