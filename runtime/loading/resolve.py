"""Workflow and step IDs of functions, found through a build's manifest.

``start(pipeline)`` and a step function passed as an argument need the function's
ID. A function from a generated module carries it (``workflow_id`` / ``step_id``);
the user's own function, imported from the source tree or from an installed wheel,
does not, and its ID is looked up in a manifest by its module and qualname
(``myapp.jobs`` + ``pipeline``). Never from its file path: the file of an installed
module is in site-packages, where no path says what the project root was.

Manifests are searched in this order: the builds this process loaded, newest first;
the build ``find_build_dir()`` finds from the current directory (``$WFKIT_BUILD_DIR``,
the project's ``.wfkit/build``, an installed wheel's); the build of the project the
function's source file belongs to (a script run from elsewhere).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wfkit.runtime.errors import WorkflowNotRegisteredError
from wfkit.runtime.loading.loader import loaded_manifests
from wfkit.runtime.loading.manifest import Kind, Manifest, ManifestEntry, read_manifest
from wfkit.runtime.loading.project import find_build_dir
from wfkit.runtime.loading.twins import canonical_module

__all__ = [
    "known_workflows",
    "manifest_keys",
    "step_function_for",
    "step_id_for",
    "workflow_id_for",
    "workflow_id_named",
    "workflow_listing",
]


def manifest_keys(qualname: str) -> list[str]:
    """The manifest keys a function's ``__qualname__`` may be listed under.

    ``outer.<locals>.inner`` is ``outer/inner``; ``Class.method`` is ``Class.method``
    for a static or class method and ``Class#method`` for an instance method (a
    qualname does not say which, so both are returned, in that order).
    """
    head, *nested = qualname.split(".<locals>.")
    keys = [head]
    cut = head.rfind(".")
    if cut > 0:
        keys.append(f"{head[:cut]}#{head[cut + 1 :]}")
    return ["/".join([key, *nested]) for key in keys]


def workflow_id_for(fn: Callable[..., Any]) -> str:
    """The workflow ID of ``fn``: its ``workflow_id`` tag, else the manifest's entry for
    its module and qualname.

    Raises:
        WorkflowNotRegisteredError: no build lists ``fn`` as a workflow.
    """
    return workflow_listing(fn)[0]


def workflow_listing(fn: Callable[..., Any]) -> tuple[str, Path | None]:
    """``workflow_id_for(fn)`` and the build directory whose manifest listed it (None for
    a tagged function, whose tag says its ID but not its build).

    Raises:
        WorkflowNotRegisteredError: no build lists ``fn`` as a workflow.
    """
    tagged = getattr(fn, "workflow_id", None)
    if isinstance(tagged, str):
        return tagged, None
    found = _find_entry("workflows", fn)
    if found is not None:
        entry, manifest = found
        return entry.id, manifest.build_dir
    step = step_id_for(fn)
    if step is not None:
        raise WorkflowNotRegisteredError(
            f"{_dotted_name(fn)} is a step ({step}), not a workflow: a step runs when a "
            "workflow calls it; start the workflow that calls it"
        )
    raise WorkflowNotRegisteredError(_not_listed(fn, "workflow"))


def workflow_id_named(name: str) -> str:
    """A workflow ID from the command line: an ID (``workflow//./myapp/jobs//pipeline``) as
    it is, or ``MODULE:QUALNAME`` (``myapp.jobs:pipeline``) looked up in the manifests,
    without importing the module.

    Raises:
        WorkflowNotRegisteredError: ``MODULE:QUALNAME`` that no build lists.
        ValueError: ``name`` is neither form.
    """
    if name.startswith("workflow//"):
        return name
    module, sep, qualname = name.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(
            f"{name!r} is neither a workflow ID (workflow//./path//name) nor MODULE:FUNCTION "
            "(myapp.jobs:pipeline)"
        )
    manifests = list(_known_manifests(None))
    for manifest in manifests:
        for key in manifest_keys(qualname):
            entry = manifest.find("workflows", module, key)
            if entry is not None:
                return entry.id
    where = ", ".join(str(m.build_dir) for m in manifests) or "no build was found"
    raise WorkflowNotRegisteredError(
        f"{module}.{qualname} is not a workflow in any wfkit build ({where}); is the build up "
        "to date (`python -m wfbuild build`)?"
    )


def known_workflows() -> tuple[list[ManifestEntry], list[Path]]:
    """Every workflow the builds this process knows list (loaded ones, then the one
    ``find_build_dir()`` finds), and those builds' directories (empty: no build known)."""
    entries: list[ManifestEntry] = []
    builds: list[Path] = []
    for manifest in _known_manifests(None):
        builds.append(manifest.build_dir)
        entries.extend(manifest.of_kind("workflows"))
    return entries, builds


def step_id_for(fn: Any) -> str | None:
    """The step ID of ``fn`` (a step function, step proxy or bound method step): its
    ``step_id`` tag, else the manifest's entry for its module and qualname; None when
    no build lists it as a step."""
    tagged = getattr(fn, "step_id", None)
    if isinstance(tagged, str):
        return tagged
    found = _find_entry("steps", fn)
    return None if found is None else found[0].id


def step_function_for(step_id: str) -> Callable[..., Any] | None:
    """The user's own function for a step ID (what client code imported), or None when
    no known build lists it or it is not reachable by attribute (a nested step)."""
    for manifest in _known_manifests(None):
        entry = manifest.find_id(step_id)
        if entry is None or entry.kind != "steps":
            continue
        if "/" in entry.key:
            return None
        try:
            target: Any = importlib.import_module(entry.module)
            for part in entry.key.replace("#", ".").split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            return None
        return target if callable(target) else None
    return None


def _dotted_name(fn: Callable[..., Any]) -> str:
    target = getattr(fn, "__func__", fn)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(fn))}"


def _not_listed(fn: Callable[..., Any], kind: str) -> str:
    target = getattr(fn, "__func__", fn)
    builds = [str(m.build_dir) for m in _known_manifests(_source_dir(target))]
    where = f"the build(s) at {', '.join(builds)}" if builds else "no build was found"
    return (
        f"{_dotted_name(fn)} is not a {kind} in any wfkit build ({where}). Is it marked "
        f'"use {kind}", and is the build up to date (`python -m wfbuild build`, or '
        "reinstall the wheel built with the wfkit Hatch hook)? You may also pass its ID string."
    )


def _find_entry(kind: Kind, fn: Any) -> tuple[ManifestEntry, Manifest] | None:
    target = getattr(fn, "__func__", fn)  # bound, static and class methods
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    module = canonical_module(module)
    keys = manifest_keys(qualname)
    for manifest in _known_manifests(_source_dir(target)):
        for key in keys:
            entry = manifest.find(kind, module, key)
            if entry is None and module == "__main__":
                entry = _find_by_source(manifest, kind, key, target)
            if entry is not None:
                return entry, manifest
    return None


def _find_by_source(manifest: Manifest, kind: Kind, key: str, fn: Any) -> ManifestEntry | None:
    """A ``__main__`` function (a script run directly): match its file to an entry's source."""
    source = _source_file(fn)
    if source is None:
        return None
    posix = source.as_posix()
    for entry in manifest.of_kind(kind):
        if entry.key == key and posix.endswith("/" + entry.source):
            return entry
    return None


def _source_file(fn: Any) -> Path | None:
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        return None
    return None if source is None else Path(source).resolve()


def _source_dir(fn: Any) -> Path | None:
    source = _source_file(fn)
    return None if source is None else source.parent


def _known_manifests(near: Path | None) -> Iterator[Manifest]:
    """Loaded builds first, then the build found from the cwd, then the one near ``near``."""
    seen: set[Path] = set()
    for manifest in loaded_manifests():
        seen.add(manifest.build_dir)
        yield manifest
    for start in (None,) if near is None else (None, near):
        build_dir = find_build_dir(start)
        if build_dir is None or build_dir in seen or not (build_dir / "manifest.json").is_file():
            continue
        seen.add(build_dir)
        yield read_manifest(build_dir)
