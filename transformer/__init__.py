"""wfkit's source transform: ``"use workflow"`` / ``"use step"`` directives to three modes.

Pure functions over source text (libcst only, no I/O). See ``transformer/SPEC.md`` for the
directive rules and ARCHITECTURE.md §1 for the generated-code contract.

The names below load lazily (PEP 562), so wfbuild's file discovery can use
``wfkit.transformer.directives`` (plain text) without loading libcst.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wfkit.transformer.manifest import build_manifest as build_manifest
    from wfkit.transformer.manifest import dump_manifest as dump_manifest
    from wfkit.transformer.naming import make_id as make_id
    from wfkit.transformer.naming import module_name_for as module_name_for
    from wfkit.transformer.result import MODES as MODES
    from wfkit.transformer.result import Diagnostic as Diagnostic
    from wfkit.transformer.result import GeneratedModule as GeneratedModule
    from wfkit.transformer.result import TransformResult as TransformResult
    from wfkit.transformer.transform import transform_module as transform_module

_EXPORTS: dict[str, str] = {
    "MODES": "wfkit.transformer.result",
    "Diagnostic": "wfkit.transformer.result",
    "GeneratedModule": "wfkit.transformer.result",
    "TransformResult": "wfkit.transformer.result",
    "build_manifest": "wfkit.transformer.manifest",
    "dump_manifest": "wfkit.transformer.manifest",
    "make_id": "wfkit.transformer.naming",
    "module_name_for": "wfkit.transformer.naming",
    "transform_module": "wfkit.transformer.transform",
}

__all__ = [
    "MODES",
    "Diagnostic",
    "GeneratedModule",
    "TransformResult",
    "build_manifest",
    "dump_manifest",
    "make_id",
    "module_name_for",
    "transform_module",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wfkit.transformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
