"""wfkit's source transform: ``"use workflow"`` / ``"use step"`` directives to three modes.

Pure functions over source text (libcst only, no I/O). See ``transformer/SPEC.md`` for the
directive rules and ARCHITECTURE.md §1 for the generated-code contract.
"""

from wfkit.transformer.manifest import build_manifest, dump_manifest
from wfkit.transformer.naming import make_id, module_name_for
from wfkit.transformer.result import MODES, Diagnostic, GeneratedModule, TransformResult
from wfkit.transformer.transform import transform_module

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
