"""A build's ``manifest.json`` (ARCHITECTURE.md §1), read into typed entries and indexed.

Reading a manifest imports nothing. A client that only starts runs reads it to learn
the IDs of the functions it passes to ``start()``; a worker also imports the
generated modules it lists (``wfkit.runtime.loading.loader``). Entries are indexed
by ID and by ``(kind, module, key)``, where ``key`` is the manifest's qualname key
(``pipeline``, ``outer/inner``, ``Class.method``, ``Class#method``), so an ID is found
from a function's ``__module__`` and ``__qualname__``: never guessed from a file path,
which differs between a source tree and an installed wheel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wfkit.runtime.errors import InvalidBuildError

__all__ = ["KINDS", "Kind", "Manifest", "ManifestEntry", "read_manifest"]

Kind = Literal["workflows", "steps", "classes"]
KINDS: tuple[Kind, ...] = ("workflows", "steps", "classes")
MANIFEST_VERSION = "1"
"""The manifest format this runtime reads (``wfkit.transformer.manifest`` writes it)."""
GENERATED_MODES = ("workflow", "step", "client")
RUNTIME_MODES = ("workflow", "step")
"""The generated modules a worker imports; client-mode modules are optional
(``include-client = false`` in the Hatch hook leaves them out)."""


@dataclass(frozen=True)
class ManifestEntry:
    """One workflow, step or class a build declares.

    Attributes:
        kind: ``workflows``, ``steps`` or ``classes``.
        source: the root-relative source path (``myapp/jobs.py``).
        key: the qualname key (``pipeline``, ``outer/inner``, ``Class#method``).
        id: the stable ID (``workflow//./myapp/jobs//pipeline``).
        module: the source's dotted module name (``myapp.jobs``).
        files: generated module per mode, relative to the build directory.
    """

    kind: Kind
    source: str
    key: str
    id: str
    module: str
    files: Mapping[str, str]


@dataclass(frozen=True, eq=False)
class Manifest:
    """A build's manifest: its raw data (served over HTTP) and its indexed entries."""

    build_dir: Path
    data: dict[str, Any]
    entries: tuple[ManifestEntry, ...]
    _by_name: dict[tuple[Kind, str, str], ManifestEntry] = field(init=False, repr=False)
    _by_id: dict[str, ManifestEntry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name = {(e.kind, e.module, e.key): e for e in self.entries}
        by_id = {e.id: e for e in self.entries}
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def from_data(cls, build_dir: Path, data: Any) -> Manifest:
        """Validate parsed ``manifest.json`` data.

        Raises:
            InvalidBuildError: listing every malformed part, each with its JSON path.
        """
        problems: list[str] = []
        entries: list[ManifestEntry] = []
        if not isinstance(data, dict):
            problems.append(f"expected a JSON object, got {type(data).__name__}")
            data = {}
        version = data.get("version", MANIFEST_VERSION)
        if not isinstance(version, str):
            problems.append(f"version: expected a string, got {type(version).__name__}")
        elif version != MANIFEST_VERSION:
            problems.append(
                f"version {version!r} is not one this wfkit reads ({MANIFEST_VERSION!r})"
            )
        for kind in KINDS:
            by_source = data.get(kind, {})
            if not isinstance(by_source, dict):
                problems.append(f"{kind}: expected an object, got {type(by_source).__name__}")
                continue
            for source, by_key in sorted(by_source.items()):
                if not isinstance(by_key, dict):
                    problems.append(
                        f"{kind}[{source!r}]: expected an object, got {type(by_key).__name__}"
                    )
                    continue
                for key, raw in sorted(by_key.items()):
                    entry = _entry(kind, source, key, raw)
                    if isinstance(entry, str):
                        problems.append(f"{kind}[{source!r}][{key!r}]: {entry}")
                    else:
                        entries.append(entry)
        if problems:
            raise InvalidBuildError(
                f"the manifest {build_dir / 'manifest.json'} is malformed: "
                + "; ".join(problems)
                + " (rebuild with `python -m wfbuild build`)"
            )
        return cls(build_dir, data, tuple(entries))

    def find(self, kind: Kind, module: str, key: str) -> ManifestEntry | None:
        """The entry of ``kind`` for ``key`` in source module ``module``, or None."""
        return self._by_name.get((kind, module, key))

    def find_id(self, entry_id: str) -> ManifestEntry | None:
        """The entry with this ID (of any kind), or None."""
        return self._by_id.get(entry_id)

    def of_kind(self, kind: Kind) -> Iterator[ManifestEntry]:
        """Every entry of ``kind``, sorted by source and key."""
        return (e for e in self.entries if e.kind == kind)

    def modules(self) -> list[tuple[str, str]]:
        """(source relpath, dotted module) of every source with generated modules, sorted."""
        return sorted({(e.source, e.module) for e in self.entries})

    def missing_files(self) -> list[str]:
        """Generated workflow/step modules the manifest lists that are not in the build,
        as ``"<file> (<module>)"``; client-mode modules are optional and not checked."""
        missing: set[str] = set()
        for entry in self.entries:
            for mode in RUNTIME_MODES:
                rel = entry.files.get(mode)
                if rel is None or not (self.build_dir / rel).is_file():
                    missing.add(f"{rel or f'{mode}/{entry.source}'} ({entry.module})")
        return sorted(missing)


def _entry(kind: Kind, source: str, key: str, raw: Any) -> ManifestEntry | str:
    """One entry, or what is wrong with it."""
    if not isinstance(raw, dict):
        return f"expected an object, got {type(raw).__name__}"
    entry_id, module = raw.get("id"), raw.get("module")
    if not isinstance(entry_id, str) or not entry_id:
        return _not_a_name("id", entry_id)
    if not isinstance(module, str) or not module:
        return _not_a_name("module", module)
    for mode in GENERATED_MODES:
        if mode in raw and not isinstance(raw[mode], str):
            return f"{mode!r} must be a path string, got {type(raw[mode]).__name__}"
    files = {m: raw[m] for m in GENERATED_MODES if isinstance(raw.get(m), str)}
    for path in files.values():
        if path.startswith("/") or ".." in path.split("/"):
            return f"generated module path {path!r} is outside the build"
    return ManifestEntry(kind, source, key, entry_id, module, files)


def _not_a_name(field_name: str, value: object) -> str:
    """What is wrong with an entry's ``id`` or ``module`` (absent, empty or not text)."""
    if value is None or value == "":
        return f"missing its {field_name!r}"
    return f"{field_name!r} must be a string, got {type(value).__name__}"


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int], Manifest]] = {}


def read_manifest(build_dir: Path | str) -> Manifest:
    """Read ``<build_dir>/manifest.json`` (cached until the file changes).

    Raises:
        FileNotFoundError: there is no manifest there.
        InvalidBuildError: it is not valid JSON or not a manifest.
    """
    directory = Path(build_dir).resolve()
    path = directory / "manifest.json"
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(directory)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidBuildError(
            f"the manifest {path} is not valid JSON ({exc}); rebuild with `python -m wfbuild build`"
        ) from None
    manifest = Manifest.from_data(directory, data)
    with _cache_lock:
        _cache[directory] = (stamp, manifest)
    return manifest
