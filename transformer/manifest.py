"""The build manifest: every workflow, step and class of a build, and where its code lives."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from wfkit.transformer.result import TransformResult

__all__ = ["MANIFEST_VERSION", "build_manifest", "dump_manifest"]

MANIFEST_VERSION = "1"


def build_manifest(results: Iterable[TransformResult]) -> dict[str, Any]:
    """Merge per-file manifest fragments into ``manifest.json``'s shape (ARCHITECTURE.md §1).

    Args:
        results: one successful transform per source file.

    Returns:
        ``{"version", "workflows", "steps", "classes"}``, each section keyed by source path
        then qualname key; files with nothing in a section are omitted from it.

    Raises:
        ValueError: if a result has error diagnostics (nothing is built on error).
    """
    manifest: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "workflows": {},
        "steps": {},
        "classes": {},
    }
    for result in sorted(results, key=lambda r: r.path):
        if not result.ok:
            raise ValueError(f"{result.path} has errors; no manifest is built on error")
        where = {
            "module": result.module,
            "workflow": f"workflow/{result.path}",
            "step": f"step/{result.path}",
            "client": f"client/{result.path}",
        }
        for section, entries in (
            ("workflows", result.workflows),
            ("steps", result.steps),
            ("classes", result.classes),
        ):
            if entries:
                manifest[section][result.path] = {
                    key: {"id": ident, **where} for key, ident in sorted(entries.items())
                }
    return manifest


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Byte-stable JSON text of a manifest: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
