"""Which deployment a new run is pinned to (``start(..., deployment=...)``).

A run records the deployment it starts on (``run_created.deployment_id``); its queue
messages go to that deployment's queues, so only workers that loaded its build serve
it (``wfkit.runtime.engine.messages``). The choices:

- ``"latest"``: the newest deployment this process knows that lists the workflow: the
  build whose manifest resolved the function passed to ``start``; else the builds this
  process loaded, newest first; else the build it would load (``find_build_dir``: the
  project's ``.wfkit/build``, ``$WFKIT_BUILD_DIR``, an installed wheel's). With none
  of those the run is *unpinned* ("", as every run wfkit 0.1.0 recorded): any worker
  serves it with its newest deployment.
- an ID (``d_…``): that deployment, which this process must know (loaded, the build
  it would load, or kept under the project's ``.wfkit/deployments/``) and whose build
  must list the workflow; anything else is refused before anything is written.
- None (``start``'s default): ``"latest"`` from app code; inside a run (a child run
  started from a step or a workflow), the parent run's deployment, so the child runs
  on the code its parent runs on.

A run pinned to a project's own ``.wfkit/build`` gets a kept copy of that build
(``deployments.keep_deployment``): the next rebuild replaces ``.wfkit/build``, and the
kept copy is what a worker then serves the run from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wfkit.runtime.errors import DeploymentNotFoundError, InvalidBuildError
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.deployments import (
    deployment_id_of,
    find_kept,
    is_deployment_id,
    keep_deployment,
    project_of_build,
)
from wfkit.runtime.loading.loader import loaded_build, loaded_builds
from wfkit.runtime.loading.manifest import read_manifest
from wfkit.runtime.loading.project import find_build_dir, find_root

__all__ = ["LATEST", "latest_deployment", "pin_deployment"]

LATEST = "latest"

log = logging.getLogger("wfkit.deployments")

_kept: set[tuple[Path, str]] = set()
"""(project root, deployment) pairs this process has kept already."""


def pin_deployment(
    workflow_id: str, deployment: str | None, *, listed_in: Path | None = None
) -> str:
    """The deployment a new run of ``workflow_id`` records (see the module docstring).

    Args:
        workflow_id: the workflow's ID.
        deployment: None, ``"latest"`` or a deployment ID.
        listed_in: the build whose manifest listed the function passed to ``start``.

    Returns:
        A deployment ID, or "" for an unpinned run.

    Raises:
        ValueError: ``deployment`` is neither ``"latest"`` nor a deployment ID.
        DeploymentNotFoundError: this process does not know that deployment, or its
            build does not list the workflow.
    """
    if deployment is None:
        parent = registry.active_deployment_id()
        if parent is not None:
            return parent
        deployment = LATEST
    if deployment == LATEST:
        return latest_deployment(workflow_id, listed_in=listed_in)
    if not is_deployment_id(deployment):
        raise ValueError(
            f"deployment={deployment!r}: expected 'latest' or a deployment ID (d_ and 24 hex "
            "digits, as `wfkit deployments` lists them)"
        )
    build_dir = _known_build(deployment)
    if build_dir is None:
        raise DeploymentNotFoundError(
            f"deployment {deployment} is not known here: it is not loaded in this process, not "
            f"the current build, and not kept under {find_root() / '.wfkit' / 'deployments'}"
        )
    if read_manifest(build_dir).find_id(workflow_id) is None:
        raise DeploymentNotFoundError(
            f"deployment {deployment} (build at {build_dir}) has no workflow {workflow_id}"
        )
    return deployment


def latest_deployment(workflow_id: str, *, listed_in: Path | None = None) -> str:
    """The newest deployment this process knows that lists ``workflow_id`` ("" if none).

    Args:
        workflow_id: the workflow's ID.
        listed_in: a build known to list it (checked first).
    """
    if listed_in is not None:
        return _deployment_of(listed_in)
    for build in loaded_builds():
        if build.manifest.find_id(workflow_id) is not None:
            return _deployment_of(build.build_dir, loaded_as=build.deployment_id)
    build_dir = find_build_dir()
    if build_dir is not None and (build_dir / "manifest.json").is_file():
        if read_manifest(build_dir).find_id(workflow_id) is not None:
            return _deployment_of(build_dir)
    return ""


def _deployment_of(build_dir: Path, *, loaded_as: str | None = None) -> str:
    """The deployment of ``build_dir`` (as this process loaded it, when it did), kept
    when it is a project's own ``.wfkit/build``."""
    resolved = build_dir.resolve()
    if loaded_as is None:
        loaded = next((b for b in loaded_builds() if b.build_dir == resolved), None)
        loaded_as = loaded.deployment_id if loaded is not None else None
    root = project_of_build(resolved)
    if loaded_as is not None and (root is None or (root, loaded_as) in _kept):
        return loaded_as
    try:
        current: str | None = deployment_id_of(resolved)
    except (OSError, InvalidBuildError):
        if loaded_as is None:
            raise
        current = None  # being rebuilt right now: what was loaded is what runs here
    deployment = loaded_as or current
    assert deployment is not None
    if root is None or (root, deployment) in _kept:
        return deployment
    if current == deployment:
        keep_deployment(resolved, root)
        _kept.add((root, deployment))
    elif find_kept(root, deployment) is not None:
        _kept.add((root, deployment))
    else:
        log.warning(
            "the build at %s changed since this process loaded it (%s); runs pinned to %s are "
            "served by this process only: no copy of it is kept",
            resolved,
            deployment,
            deployment,
        )
    return deployment


def _known_build(deployment_id: str) -> Path | None:
    """Where this process finds the build of ``deployment_id``, or None."""
    loaded = loaded_build(deployment_id)
    if loaded is not None:
        return loaded.build_dir
    build_dir = find_build_dir()
    if build_dir is not None and (build_dir / "manifest.json").is_file():
        if deployment_id_of(build_dir) == deployment_id:
            return build_dir
    kept = find_kept(find_root(), deployment_id)
    return None if kept is None else kept.path
