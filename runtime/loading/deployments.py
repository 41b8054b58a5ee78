"""Deployments: a build's identity, and the copies of builds kept to finish their runs.

**Deployment ID.** ``d_`` and 24 hex digits of a SHA-256 over ``manifest.json`` and
every workflow- and step-mode module the manifest lists (each by its path in the build
and the hash of its bytes). The same sources built by the same wfkit give the same ID
on any machine and in a wheel; changing any generated module gives another. It is
computed where a build is read, never stored, so an installed wheel's build (which
ships in the wheel) has the ID its files hash to. Client-mode modules are left out: a
wheel may ship without them (``include-client = false``), and they derive from the
same sources as the step modules. Modules without directives or serializable classes
are not in a build, so changing only those keeps the deployment.

**Kept deployments.** ``<project root>/.wfkit/deployments/<id>/`` holds a copy of a
build (its manifest, generated workflow and step modules, and under ``source/`` the
sources they came from, for tracebacks), written by ``keep_deployment`` whenever runs
are pinned to a project's mutable ``.wfkit/build`` and by ``wfkit deploy``. A rebuild
replaces ``.wfkit/build``; the kept copy lets a worker keep serving the runs that
started on the build before (``wfkit worker`` loads the kept deployments that have
runs in flight). A copy is written to a temporary directory, checked against its ID
(a build rewritten while being copied is copied again), then renamed into place.

Alternatives rejected: writing the ID into the build at build time (a wheel built
without it, or a build edited by hand, would carry a stale or no ID); hashing the
source tree (it is not in a wheel, and includes what no run executes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wfkit.runtime.errors import InvalidBuildError
from wfkit.runtime.loading.manifest import RUNTIME_MODES, Manifest, read_manifest
from wfkit.runtime.loading.project import STATE_DIR, ensure_state_dir

__all__ = [
    "DEPLOYMENTS_DIR",
    "KeptDeployment",
    "compute_deployment_id",
    "deployment_id_of",
    "find_kept",
    "is_deployment_id",
    "keep_deployment",
    "kept_deployments",
    "kept_project_root",
    "project_of_build",
    "remove_kept",
]

DEPLOYMENTS_DIR = "deployments"
KEPT_RECORD = "deployment.json"
_ID = re.compile(r"d_[0-9a-f]{24}")
_HASH_HEADER = b"wfkit deployment 1\n"
_KEEP_ATTEMPTS = 3


def is_deployment_id(value: str) -> bool:
    """Whether ``value`` has the form of a deployment ID (``d_`` + 24 hex digits)."""
    return _ID.fullmatch(value) is not None


def _runtime_files(manifest: Manifest) -> list[str]:
    """The build-relative paths of the generated modules a worker runs, sorted."""
    return sorted({e.files[m] for e in manifest.entries for m in RUNTIME_MODES if m in e.files})


def compute_deployment_id(build_dir: Path | str) -> str:
    """Hash a build into its deployment ID (see the module docstring).

    Raises:
        FileNotFoundError: there is no ``manifest.json`` there.
        InvalidBuildError: the manifest is malformed or lists a module the build lacks.
    """
    directory = Path(build_dir).resolve()
    manifest = read_manifest(directory)
    missing = manifest.missing_files()
    if missing:
        raise InvalidBuildError(
            f"the build at {directory} is incomplete (missing {', '.join(missing)}); rebuild it "
            "(`python -m wfbuild build`) or reinstall the wheel"
        )
    digest = hashlib.sha256(_HASH_HEADER)
    for rel in ["manifest.json", *_runtime_files(manifest)]:
        data = (directory / rel).read_bytes()
        digest.update(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return "d_" + digest.hexdigest()[:24]


_ids_lock = threading.Lock()
_ids: dict[Path, tuple[tuple[tuple[int, int], ...], str]] = {}


def _stamp(directory: Path) -> tuple[tuple[int, int], ...]:
    """Modification time and size of the manifest and of every module it lists."""
    manifest = read_manifest(directory)
    stamps = []
    for rel in ["manifest.json", *_runtime_files(manifest)]:
        try:
            stat = (directory / rel).stat()
        except OSError:
            return ()
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def deployment_id_of(build_dir: Path | str) -> str:
    """``compute_deployment_id``, cached until a file of the build changes.

    Raises:
        FileNotFoundError, InvalidBuildError: as ``compute_deployment_id``.
    """
    directory = Path(build_dir).resolve()
    stamp = _stamp(directory)
    with _ids_lock:
        cached = _ids.get(directory)
    if stamp and cached is not None and cached[0] == stamp:
        return cached[1]
    deployment_id = compute_deployment_id(directory)
    if stamp:
        with _ids_lock:
            _ids[directory] = (stamp, deployment_id)
    return deployment_id


# --- kept deployments ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeptDeployment:
    """A build kept under ``.wfkit/deployments/<id>/``.

    Attributes:
        deployment_id: its ID (also the directory's name).
        path: the kept build directory.
        kept_at: when it was kept.
        kept_from: the build directory it was copied from.
    """

    deployment_id: str
    path: Path
    kept_at: datetime
    kept_from: str


def _kept_dir(root: Path) -> Path:
    return root / STATE_DIR / DEPLOYMENTS_DIR


def project_of_build(build_dir: Path | str) -> Path | None:
    """The project root when ``build_dir`` is a project's own ``<root>/.wfkit/build``
    (rewritten by every rebuild), else None (a wheel's build, a kept copy, a CI
    artifact: none of those change under a run)."""
    directory = Path(build_dir).resolve()
    if directory.name == "build" and directory.parent.name == STATE_DIR:
        root = directory.parent.parent
        if (root / "pyproject.toml").is_file():
            return root
    return None


def kept_project_root(build_dir: Path | str) -> Path | None:
    """The project root when ``build_dir`` is a kept copy (``<root>/.wfkit/deployments/<id>``)."""
    directory = Path(build_dir).resolve()
    if directory.parent.name == DEPLOYMENTS_DIR and directory.parent.parent.name == STATE_DIR:
        return directory.parent.parent.parent
    return None


def _read_kept(path: Path) -> KeptDeployment | None:
    try:
        record = json.loads((path / KEPT_RECORD).read_text(encoding="utf-8"))
        deployment_id = record["id"]
        kept_at = datetime.fromisoformat(record["kept_at"])
        kept_from = str(record.get("kept_from", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if deployment_id != path.name or not is_deployment_id(deployment_id):
        return None
    return KeptDeployment(deployment_id, path, kept_at, kept_from)


def find_kept(root: Path, deployment_id: str) -> KeptDeployment | None:
    """The kept copy of ``deployment_id`` under ``root``'s ``.wfkit/deployments``, or None."""
    if not is_deployment_id(deployment_id):
        return None
    return _read_kept(_kept_dir(root) / deployment_id)


def kept_deployments(root: Path) -> list[KeptDeployment]:
    """Every deployment kept under ``root``'s ``.wfkit/deployments``, oldest first."""
    directory = _kept_dir(root)
    if not directory.is_dir():
        return []
    found = [_read_kept(path) for path in directory.iterdir() if is_deployment_id(path.name)]
    return sorted((k for k in found if k is not None), key=lambda k: (k.kept_at, k.deployment_id))


def keep_deployment(
    build_dir: Path | str, root: Path, *, sources: Path | None = None
) -> KeptDeployment:
    """Copy a build to ``<root>/.wfkit/deployments/<its id>/`` unless it is kept already.

    Args:
        build_dir: the build to keep.
        root: the project root whose ``.wfkit`` keeps it.
        sources: where the manifest's source paths are (default: ``root`` for the
            project's own ``.wfkit/build``, else the build's parent, as in a wheel's
            site-packages).

    Returns:
        The kept deployment.

    Raises:
        FileNotFoundError, InvalidBuildError: the build is missing or incomplete, or it
            changed during every attempt to copy it.
    """
    source_build = Path(build_dir).resolve()
    if sources is None:
        sources = project_of_build(source_build) or source_build.parent
    for _attempt in range(_KEEP_ATTEMPTS):
        deployment_id = deployment_id_of(source_build)
        kept = find_kept(root, deployment_id)
        if kept is not None:
            return kept
        ensure_state_dir(root)
        target = _kept_dir(root) / deployment_id
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".tmp-{deployment_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            manifest = _copy_build(source_build, temporary, sources)
            if compute_deployment_id(temporary) != deployment_id:
                continue  # rebuilt while we copied: take the new one
            record = {
                "id": deployment_id,
                "kept_at": datetime.now(UTC).isoformat(),
                "kept_from": str(source_build),
                "modules": [module for _source, module in manifest.modules()],
            }
            (temporary / KEPT_RECORD).write_text(
                json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            try:
                temporary.rename(target)
            except OSError:  # another process kept it first
                pass
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        kept = find_kept(root, deployment_id)
        if kept is not None:
            return kept
    raise InvalidBuildError(
        f"the build at {source_build} changed during each of {_KEEP_ATTEMPTS} attempts to keep "
        "a copy of it; keep it once the rebuild is done (`wfkit deploy`)"
    )


def _copy_build(build_dir: Path, target: Path, sources: Path) -> Manifest:
    """Copy the manifest, the runtime modules and their sources into ``target``."""
    manifest = read_manifest(build_dir)
    target.mkdir(parents=True)
    files: Sequence[str] = ["manifest.json", *_runtime_files(manifest)]
    for rel in files:
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(build_dir / rel, destination)
    built_from = _source_hashes(build_dir)
    for source, _module in manifest.modules():
        try:
            data = (sources / source).read_bytes()
        except OSError:
            continue
        if source in built_from and hashlib.sha256(data).hexdigest() != built_from[source]:
            continue  # edited since the build: its lines would not match the traceback's
        destination = target / "source" / source
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
    return manifest


def _source_hashes(build_dir: Path) -> dict[str, str]:
    """The sha256 of each source as wfbuild built it (its ``build-state.json``), if known."""
    try:
        state = json.loads((build_dir / "build-state.json").read_text(encoding="utf-8"))
        files = state["files"]
        return {rel: str(entry["sha256"]) for rel, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def remove_kept(kept: KeptDeployment) -> None:
    """Delete a kept copy (``wfkit deployments --prune``)."""
    shutil.rmtree(kept.path, ignore_errors=True)
