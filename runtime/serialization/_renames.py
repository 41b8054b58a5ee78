"""Module names older wfkit versions wrote into stored values, and where they live now.

Before 0.2, wfkit installed top-level packages ``runtime`` and ``worlds``; a stored
exception or class reference names its class as ``module:QualName`` (and error infos
as ``module.QualName``), so logs written then say ``runtime.errors:FatalError``. These
names must keep resolving for as long as such logs exist (stored formats are
promises; ``tests/golden`` replays logs recorded before the move). The table is
consulted before importing, so a user's own top-level ``runtime`` module is never
asked for wfkit's classes.
"""

from __future__ import annotations

RENAMED_MODULES: dict[str, str] = {
    "runtime.builtins": "wfkit.runtime.api.builtin_steps",
    "runtime.client": "wfkit.runtime.api.client",
    "runtime.context": "wfkit.runtime.context",
    "runtime.errors": "wfkit.runtime.errors",
    "runtime.executor": "wfkit.runtime.engine.executor",
    "runtime.gen": "wfkit.runtime.gen",
    "runtime.http": "wfkit.runtime.tools.http",
    "runtime.inline_steps": "wfkit.runtime.engine.inline_steps",
    "runtime.inspect": "wfkit.runtime.tools.tables",
    "runtime.loader": "wfkit.runtime.loading.loader",
    "runtime.loop": "wfkit.runtime.replay.loop",
    "runtime.orchestrator": "wfkit.runtime.engine.orchestrator",
    "runtime.registry": "wfkit.runtime.loading.registry",
    "runtime.replay": "wfkit.runtime.replay.session",
    "runtime.replay_calls": "wfkit.runtime.replay.calls",
    "runtime.replay_outcome": "wfkit.runtime.replay.outcome",
    "runtime.run_state": "wfkit.runtime.engine.run_state",
    "runtime.serialization": "wfkit.runtime.serialization",
    "runtime.streams": "wfkit.runtime.api.streams",
    "runtime.verify": "wfkit.runtime.tools.verify",
    "runtime.web": "wfkit.runtime.tools.web",
    "runtime.web_templates": "wfkit.runtime.tools.web_templates",
    "runtime.webhooks": "wfkit.runtime.api.webhooks",
    "runtime.worker": "wfkit.runtime.engine.worker",
    "runtime.workflow_api": "wfkit.runtime.api.workflow",
    "runtime.world_config": "wfkit.runtime.world_config",
    "worlds": "wfkit.worlds",
    "worlds.base": "wfkit.worlds.base",
    "worlds.base.errors": "wfkit.worlds.base.errors",
    "worlds.base.records": "wfkit.worlds.base.records",
    "worlds.base.lifecycle": "wfkit.worlds.base.lifecycle",
    "worlds.base.fold": "wfkit.worlds.base.fold",
    "worlds.base.protocols": "wfkit.worlds.base.protocols",
    "worlds.memory": "wfkit.worlds.memory",
    "worlds.local": "wfkit.worlds.local",
    "worlds.postgres": "wfkit.worlds.postgres",
    "worlds.postgres.errors": "wfkit.worlds.postgres.errors",
}


def current_module_name(module_name: str) -> str:
    """Where a module named in a stored value lives in this version."""
    return RENAMED_MODULES.get(module_name, module_name)
