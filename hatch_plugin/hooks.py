"""Hatch plugin registration (entry point group ``hatch``): nothing but the hook class."""

from __future__ import annotations

from hatchling.plugin import hookimpl

from wfkit.hatch_plugin.plugin import WfkitBuildHook


@hookimpl
def hatch_register_build_hook() -> type[WfkitBuildHook]:
    """Register the ``wfkit`` build hook."""
    return WfkitBuildHook
