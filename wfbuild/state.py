"""``build-state.json``: wfbuild's incremental cache (never read by the runtime).

For every source file the transformer looked at, the state records the sha256 of
its content, a hash of the part of the ``workflow_modules`` set it can refer to, its
manifest fragment and the sha256 of each generated module. A file whose content,
set and outputs all still match is not transformed again. The whole state is
discarded when the transformer's own code changes (``transformer_fingerprint``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

# Not imported from wfkit.transformer.result: `is_stale` must not load the transformer (libcst).
Mode = Literal["workflow", "step", "client"]
MODES: tuple[Mode, ...] = ("workflow", "step", "client")

STATE_FILE = "build-state.json"
STATE_FORMAT = 1


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def modules_hash(modules: Iterable[str]) -> str:
    """A short stable hash of a set of dotted module names."""
    return sha256_hex("\n".join(sorted(modules)).encode())[:16]


@cache
def transformer_fingerprint() -> str:
    """A hash of the transformer package's source: any change to it invalidates the cache.

    The package is found by its installed name, ``wfkit.transformer``: a bare
    ``transformer`` would be whatever the current directory holds (nothing, or the
    user's own package of that name), so the fingerprint changed with the directory a
    build ran from and not with wfkit.
    """
    spec = importlib.util.find_spec("wfkit.transformer")
    digest = hashlib.sha256(f"wfbuild-state-{STATE_FORMAT}".encode())
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        base = Path(location)
        for file in sorted(base.rglob("*.py")):
            if "__pycache__" in file.parts:
                continue
            digest.update(file.relative_to(base).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FileEntry:
    """What the last transform of one source file produced."""

    sha256: str
    module: str
    workflow_modules: str  # modules_hash of the relevant part of the set used
    has_directives: bool
    workflows: dict[str, str] = field(default_factory=dict)
    steps: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    outputs: dict[Mode, str] = field(default_factory=dict)  # mode -> sha256 of the written module

    @property
    def is_generated(self) -> bool:
        """Whether this file's modules are written to the build (directives or serde classes)."""
        return self.has_directives or bool(self.classes)

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "module": self.module,
            "workflow_modules": self.workflow_modules,
            "has_directives": self.has_directives,
            "workflows": self.workflows,
            "steps": self.steps,
            "classes": self.classes,
            "outputs": self.outputs,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileEntry:
        outputs = raw.get("outputs", {})
        return cls(
            sha256=str(raw["sha256"]),
            module=str(raw["module"]),
            workflow_modules=str(raw["workflow_modules"]),
            has_directives=bool(raw["has_directives"]),
            workflows=dict(raw.get("workflows", {})),
            steps=dict(raw.get("steps", {})),
            classes=dict(raw.get("classes", {})),
            outputs={m: str(outputs[m]) for m in MODES if m in outputs},
        )


@dataclass
class BuildState:
    """The whole cache: the paths built, the manifest hash and one entry per transformed file."""

    transformer: str
    paths: list[str]
    manifest_sha256: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def is_current(self) -> bool:
        """Whether the entries came from the transformer now installed (else none may be reused)."""
        return self.transformer == transformer_fingerprint()

    def dumps(self) -> str:
        body = {
            "format": STATE_FORMAT,
            "transformer": self.transformer,
            "paths": self.paths,
            "manifest_sha256": self.manifest_sha256,
            "files": {rel: self.files[rel].to_json() for rel in sorted(self.files)},
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"


def load_state(out_dir: Path) -> BuildState | None:
    """Read ``<out>/build-state.json``; None when missing or unreadable."""
    try:
        raw = json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
        if raw.get("format") != STATE_FORMAT:
            return None
        state = BuildState(
            transformer=str(raw["transformer"]),
            paths=[str(p) for p in raw["paths"]],
            manifest_sha256=str(raw.get("manifest_sha256", "")),
            files={rel: FileEntry.from_json(e) for rel, e in raw["files"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return state
