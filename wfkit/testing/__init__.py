"""wfkit's testing kit: an isolated world with an in-process worker, time skipping,
step mocks and assertions on the event log.

In pytest (the plugin registers itself), take the ``wf_env`` fixture::

    def test_checkout(wf_env):
        run = wf_env.start(checkout, "o-1")     # sleeps a day: finishes at once
        assert wf_env.result(run)["approved"]
        wf_env.assert_steps(run, ["charge", "ship"])

Elsewhere, ``with WorkflowEnv(create_test_world("memory")) as env: ...``.

The names load lazily, so ``import wfkit.testing`` (which pytest does for every
session through the plugin) costs nothing until a test uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wfkit.testing.assertions import assert_replays, assert_steps, export_golden, step_names
    from wfkit.testing.clock import VirtualClock
    from wfkit.testing.env import WorkflowEnv, create_test_world
    from wfkit.testing.mocks import StepCall, StepMock

_EXPORTS: dict[str, str] = {
    "assert_replays": "wfkit.testing.assertions",
    "assert_steps": "wfkit.testing.assertions",
    "export_golden": "wfkit.testing.assertions",
    "step_names": "wfkit.testing.assertions",
    "VirtualClock": "wfkit.testing.clock",
    "WorkflowEnv": "wfkit.testing.env",
    "create_test_world": "wfkit.testing.env",
    "StepCall": "wfkit.testing.mocks",
    "StepMock": "wfkit.testing.mocks",
}

__all__ = [
    "StepCall",
    "StepMock",
    "VirtualClock",
    "WorkflowEnv",
    "assert_replays",
    "assert_steps",
    "create_test_world",
    "export_golden",
    "step_names",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wfkit.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
