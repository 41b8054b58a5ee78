"""Load a build: check it is complete, then import the generated modules it lists.

Workflow-mode modules load as ``__wfkit_workflow__.<module>`` and step-mode modules
as ``__wfkit_step__.<module>``, through a meta-path finder over the build
directory. Each is compiled with its line numbers mapped back to the user's source
(through the ``__wfkit_line_map__`` the transformer appends) and with the original
file name, so tracebacks from workflow and step code name the user's file and line.
Step twins are then unified with the user's modules (``twins.unify_step_twin``).

Every build is a *deployment* (``deployments``: its ID is a content hash) and fills
registry tables of its own (``registry.loading_into``). Builds of different projects
share the twin prefixes above. A build of modules another loaded build already
provides -- an older version kept to finish its runs during a rollout -- is loaded
*isolated*: under prefixes of its own (``twin_names``), with its imports redirected to
its own twins (``isolation``) and without the user's modules, which are the current
code. A kept copy (``.wfkit/deployments/<id>``) is always loaded isolated, and its
tracebacks name the sources kept with it.

A build that lacks a module its manifest lists is refused before anything is
imported (``InvalidBuildError``): a worker that started on it would fail live runs
with ``WorkflowNotRegisteredError`` instead.

Finding a build (``find_build_dir``, ``find_root``, re-exported here) lives in
``project``, reading its manifest in ``manifest``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from wfkit.runtime.errors import InvalidBuildError
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.deployments import deployment_id_of, kept_project_root
from wfkit.runtime.loading.isolation import ImportRedirect
from wfkit.runtime.loading.manifest import Manifest, read_manifest
from wfkit.runtime.loading.project import (
    BUILD_ENV,
    STATE_DIR,
    WHEEL_BUILD_PACKAGE,
    find_build_dir,
    find_root,
)
from wfkit.runtime.loading.twin_names import PREFIXES, is_twin_head
from wfkit.runtime.loading.twins import unify_step_twin

__all__ = [
    "BUILD_ENV",
    "PREFIXES",
    "WHEEL_BUILD_PACKAGE",
    "LoadedBuild",
    "compile_generated",
    "find_build_dir",
    "find_root",
    "load_build",
    "loaded_build",
    "loaded_build_at",
    "loaded_builds",
    "loaded_manifests",
    "loads_generation",
    "reset",
]

_lock = threading.RLock()


@dataclass(frozen=True, eq=False)
class LoadedBuild:
    """A build imported into this process.

    Attributes:
        manifest: its manifest.
        root: the directory its manifest's source paths are relative to.
        deployment_id: its deployment ID.
        tables: what it registered.
        redirect: how its imports are rewritten (isolated builds only).
        sources: where the files named in its tracebacks are (``root``, or the sources
            kept with a kept copy).
    """

    manifest: Manifest
    root: Path
    deployment_id: str
    tables: registry.Tables
    redirect: ImportRedirect | None = None
    sources: Path | None = None

    @property
    def build_dir(self) -> Path:
        return self.manifest.build_dir

    @property
    def isolated(self) -> bool:
        """Loaded under prefixes of its own (see the module docstring)."""
        return self.tables.isolated

    def prefix(self, mode: str) -> str:
        """The module prefix of its ``mode`` twins."""
        return self.tables.twin_prefixes[mode]


_loaded: dict[Path, LoadedBuild] = {}
"""Every build loaded, by its directory (a directory holding a deployment loaded from
another directory maps to that one)."""
_builds: list[LoadedBuild] = []
"""One per deployment, in load order."""
_shared_modules: dict[str, LoadedBuild] = {}
"""The modules provided under the shared prefixes, and the build providing each."""
_generation = 0


def load_build(
    build_dir: Path | str | None = None,
    *,
    root: Path | None = None,
    isolated: bool | None = None,
) -> Manifest:
    """Check a build is complete, then import its generated workflow and step modules
    (once per process and deployment).

    Args:
        build_dir: the build output; default ``find_build_dir()``.
        root: the directory the manifest's source paths are relative to (it goes on
            ``sys.path`` when not there, and names the files in tracebacks); default
            the project of a ``<root>/.wfkit/build`` or of a kept copy, else the nearest
            of the build's parent, the ``sys.path`` entries and the current project
            that holds the manifest's sources (for an installed wheel: its site-packages).
        isolated: load under the deployment's own prefixes (see the module docstring);
            default: when it is a kept copy or another loaded build provides one of its
            modules.

    Returns:
        The build's manifest.

    Raises:
        FileNotFoundError: there is no build (run ``python -m wfbuild build``).
        InvalidBuildError: the manifest is unreadable, a generated module it lists is
            missing, a source module cannot be found (not required when isolated), or a
            module registers less than the manifest lists; nothing is imported when
            files are missing.
    """
    resolved = Path(build_dir).resolve() if build_dir else find_build_dir(root)
    if resolved is None or not (resolved / "manifest.json").is_file():
        where = resolved or (find_root(root) / STATE_DIR / "build")
        raise FileNotFoundError(
            f"no wfkit build at {where}: run `python -m wfbuild build` first (or set {BUILD_ENV})"
        )
    with _lock:
        loaded = _loaded.get(resolved)
        if loaded is not None:
            return loaded.manifest
        # Built-in steps and codecs every worker needs, whatever the user's modules import
        # (imported before any build's tables take registrations).
        importlib.import_module("wfkit.runtime.api.builtin_steps")
        importlib.import_module("wfkit.runtime.api.streams")
        manifest = read_manifest(resolved)
        build = _prepare(manifest, root, isolated)
        if build is None:  # the same code, built or copied elsewhere, is loaded already
            return manifest
        with registry.loading_into(build.tables):
            _install_finder(build)
            try:
                _import_modules(build)
            except BaseException:
                _uninstall(build)
                raise
        _register(build)
        return manifest


def _prepare(manifest: Manifest, root: Path | None, isolated: bool | None) -> LoadedBuild | None:
    """Decide how ``manifest``'s build loads, refusing it if it is incomplete; None when
    its deployment is loaded already (from another directory)."""
    kept_root = kept_project_root(manifest.build_dir)
    modules = [module for _source, module in manifest.modules()]
    if isolated is None:
        isolated = kept_root is not None or any(m in _shared_modules for m in modules)
    source_root = (root or kept_root or _source_root(manifest)).resolve()
    if str(source_root) not in sys.path:
        sys.path.insert(0, str(source_root))
    _refuse_incomplete(manifest, source_root, check_sources=not isolated)
    deployment_id = deployment_id_of(manifest.build_dir)
    same = loaded_build(deployment_id)
    if same is not None:
        _loaded[manifest.build_dir] = same
        return None
    tables = registry.deployment_tables(deployment_id, isolated=isolated)
    redirect = None
    sources = None
    if isolated:
        redirect = ImportRedirect(tables.twin_prefixes, frozenset(modules))
        if (manifest.build_dir / "source").is_dir():
            sources = manifest.build_dir / "source"
    return LoadedBuild(manifest, source_root, deployment_id, tables, redirect, sources)


def _import_modules(build: LoadedBuild) -> None:
    manifest = build.manifest
    for _source, module in manifest.modules():
        for mode in PREFIXES:
            importlib.import_module(f"{build.prefix(mode)}.{module}")
        registry.register_twins(module)
    if not build.isolated:
        _unify_step_twins(build)
    _refuse_unregistered(build)


def _register(build: LoadedBuild) -> None:
    global _generation
    _loaded[build.build_dir] = build
    _builds.append(build)
    if not build.isolated:
        for _source, module in build.manifest.modules():
            _shared_modules.setdefault(module, build)
    _generation += 1


def _source_root(manifest: Manifest) -> Path:
    """Where the manifest's source paths are rooted (see ``load_build``'s ``root``)."""
    build_dir = manifest.build_dir
    if build_dir.parent.name == STATE_DIR:
        return build_dir.parent.parent
    modules = manifest.modules()
    if modules:
        first = modules[0][0]
        candidates = [build_dir.parent, *(Path(p or ".") for p in sys.path), find_root()]
        for candidate in candidates:
            if (candidate / first).is_file():
                return candidate
    return find_root()


def _refuse_incomplete(manifest: Manifest, root: Path, *, check_sources: bool) -> None:
    """Raise InvalidBuildError listing every generated module missing from the build and
    (``check_sources``) every source module that cannot be found, before anything is
    imported."""
    problems = [f"missing generated module {m}" for m in manifest.missing_files()]
    for source, module in manifest.modules() if check_sources else ():
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            problems.append(f"missing source module {module} ({root / source})")
    if problems:
        raise InvalidBuildError(
            f"the build at {manifest.build_dir} is incomplete; rebuild it (`python -m wfbuild "
            "build`) or reinstall the wheel:\n" + "\n".join(f"  {p}" for p in problems)
        )


def _unify_step_twins(build: LoadedBuild) -> None:
    steps = list(build.manifest.of_kind("steps"))
    for _source, module in build.manifest.modules():
        twin = sys.modules[f"{build.prefix('step')}.{module}"]
        original = importlib.import_module(module)
        if twin is not original:
            unify_step_twin(twin, original, (e for e in steps if e.module == module))


def _refuse_unregistered(build: LoadedBuild) -> None:
    """Raise InvalidBuildError when a generated module registered less than the manifest
    lists (a build whose files do not match its manifest)."""
    manifest, tables = build.manifest, build.tables
    problems = [
        f"workflow {e.id} ({e.files.get('workflow')})"
        for e in manifest.of_kind("workflows")
        if e.id not in tables.workflows
    ]
    problems += [
        f"step {e.id} ({e.files.get('step')})"
        for e in manifest.of_kind("steps")
        if e.id not in tables.steps
    ]
    if problems:
        raise InvalidBuildError(
            f"the build at {manifest.build_dir} does not match its manifest; rebuild it "
            "(`python -m wfbuild build`) or reinstall the wheel. Not registered:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


# --- import machinery -------------------------------------------------------------------


class _BuildFinder(importlib.abc.MetaPathFinder):
    """Finds twins: the shared prefixes search every shared build (newest first), a
    deployment's own prefixes only its build."""

    def __init__(self) -> None:
        self.shared: list[LoadedBuild] = []
        self.isolated: dict[str, tuple[str, LoadedBuild]] = {}
        """Each isolated build's prefixes -> (mode, build)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        head, _, rest = fullname.partition(".")
        if not is_twin_head(head):
            return None
        own = self.isolated.get(head)
        if own is not None:
            mode, builds = own[0], [own[1]]
        else:
            found = next((m for m, p in PREFIXES.items() if p == head), None)
            if found is None:
                return None
            mode, builds = found, self.shared
        if not rest:
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        for build in builds:
            base = build.build_dir / mode / Path(*rest.split("."))
            for candidate, is_package in (
                (base.with_suffix(".py"), False),
                (base / "__init__.py", True),
            ):
                if candidate.is_file():
                    relative = candidate.relative_to(build.build_dir / mode)
                    original = build.root / relative
                    if build.sources is not None and (build.sources / relative).is_file():
                        original = build.sources / relative
                    loader = _GeneratedLoader(candidate, original, mode, build.redirect)
                    spec = importlib.util.spec_from_file_location(
                        fullname,
                        candidate,
                        loader=loader,
                        submodule_search_locations=[str(base)] if is_package else None,
                    )
                    return spec
            if base.is_dir():
                return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        # Not generated (no directives): the workflow/step twin of a plain module is the module.
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(rest))


class _PackageLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__path__ = []


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, real_name: str) -> None:
        self.real_name = real_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return importlib.import_module(self.real_name)

    def exec_module(self, module: ModuleType) -> None:
        return None


class _GeneratedLoader(importlib.abc.Loader):
    def __init__(
        self, generated: Path, original: Path, mode: str, redirect: ImportRedirect | None
    ) -> None:
        self.generated = generated
        self.original = original
        self.mode = mode
        self.redirect = redirect

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # Never cache bytecode for generated code: the line map must always apply.
        code = compile_generated(
            self.generated.read_text(encoding="utf-8"),
            str(self.original),
            mode=self.mode,
            redirect=self.redirect,
        )
        module.__file__ = str(self.original)
        exec(code, module.__dict__)


def compile_generated(
    source: str,
    original_filename: str,
    *,
    mode: str = "workflow",
    redirect: ImportRedirect | None = None,
) -> Any:
    """Compile generated code with line numbers mapped back to the original source.

    Args:
        source: the generated module's text.
        original_filename: the user's file it came from (named in tracebacks).
        mode: the mode it was generated for.
        redirect: an isolated deployment's import rewrite (see ``isolation``).
    """
    tree = ast.parse(source, filename=original_filename)
    if redirect is not None:
        redirect.apply(tree, mode)
    line_map = _read_line_map(tree)
    if line_map:
        _remap_lines(tree, line_map)
    return compile(tree, original_filename, "exec", dont_inherit=True)


def _read_line_map(tree: ast.Module) -> list[tuple[int, int, int]]:
    for node in reversed(tree.body):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "__wfkit_line_map__"
        ):
            value = ast.literal_eval(node.value)
            return [tuple(run) for run in value]  # type: ignore[misc]
    return []


def _remap_lines(tree: ast.Module, runs: list[tuple[int, int, int]]) -> None:
    table: dict[int, int] = {}
    for generated, original, count in runs:
        for offset in range(count):
            table[generated + offset] = original + offset
    ordered = sorted(table)

    def mapped(line: int) -> int:
        if line in table:
            return table[line]
        # Generated lines (registrations, stubs) take the nearest preceding user line.
        lo, hi = 0, len(ordered)
        while lo < hi:
            mid = (lo + hi) // 2
            if ordered[mid] <= line:
                lo = mid + 1
            else:
                hi = mid
        return table[ordered[lo - 1]] if lo else 1

    for node in ast.walk(tree):
        if hasattr(node, "lineno"):
            start = mapped(node.lineno)
            node.lineno = start
            end = getattr(node, "end_lineno", None)
            if end is not None:
                end = max(start, mapped(end))
                setattr(node, "end_lineno", end)  # noqa: B010
                col = getattr(node, "col_offset", 0)
                if end == start and (getattr(node, "end_col_offset", None) or 0) < col:
                    setattr(node, "end_col_offset", col)  # noqa: B010


_finder = _BuildFinder()


def _install_finder(build: LoadedBuild) -> None:
    if build.isolated:
        for mode in PREFIXES:
            _finder.isolated[build.prefix(mode)] = (mode, build)
    elif build not in _finder.shared:
        _finder.shared.insert(0, build)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _uninstall(build: LoadedBuild) -> None:
    """Undo a load that failed half-way: its finder entry, the twins it imported, its tables."""
    if build.isolated:
        for mode in PREFIXES:
            _finder.isolated.pop(build.prefix(mode), None)
        heads = {build.prefix(mode) for mode in PREFIXES}
        doomed = [n for n in sys.modules if n.partition(".")[0] in heads]
    else:
        if build in _finder.shared:
            _finder.shared.remove(build)
        own = {m for _s, m in build.manifest.modules() if m not in _shared_modules}
        doomed = [
            name
            for name in sys.modules
            if is_twin_head(name.partition(".")[0])
            and any(
                name.partition(".")[2] == m or name.partition(".")[2].startswith(m + ".")
                for m in own
            )
        ]
    for name in doomed:
        del sys.modules[name]
    registry.forget_deployment(build.deployment_id)


def reset() -> None:
    """Forget loaded builds and unload their modules (tests)."""
    global _generation
    with _lock:
        _loaded.clear()
        _builds.clear()
        _shared_modules.clear()
        _finder.shared.clear()
        _finder.isolated.clear()
        _generation += 1
        for name in list(sys.modules):
            if is_twin_head(name.split(".", 1)[0]):
                del sys.modules[name]
        registry.forget_deployments()
        from wfkit.runtime.serialization._classes import forget_resolved_classes
        from wfkit.runtime.serialization._common import import_class

        import_class.cache_clear()  # they may hold classes of the unloaded twins
        forget_resolved_classes()


def loaded_builds() -> list[LoadedBuild]:
    """The builds this process has loaded, one per deployment, newest first: those loaded
    under the shared prefixes (the current code), then the isolated ones."""
    with _lock:
        shared = [b for b in reversed(_builds) if not b.isolated]
        return shared + [b for b in reversed(_builds) if b.isolated]


def loaded_build(deployment_id: str) -> LoadedBuild | None:
    """The loaded build of ``deployment_id``, or None."""
    with _lock:
        return next((b for b in _builds if b.deployment_id == deployment_id), None)


def loaded_build_at(build_dir: Path | str) -> LoadedBuild | None:
    """The build loaded from ``build_dir`` (or the same deployment loaded from elsewhere)."""
    with _lock:
        return _loaded.get(Path(build_dir).resolve())


def loaded_manifests() -> list[Manifest]:
    """The manifests of the builds this process has loaded, newest first (``loaded_builds``)."""
    return [build.manifest for build in loaded_builds()]


def rebuilt_build_listing(entry_id: str) -> Path | None:
    """A build directory whose manifest on disk lists ``entry_id`` although the build this
    process loaded from it does not (it was rebuilt since), or the build this process
    would load now (``find_build_dir``) listing it when no loaded build does. None when
    no build on disk lists it either: then a rebuild, not a restart, is what is missing.
    """
    loaded = loaded_builds()
    if any(b.manifest.find_id(entry_id) is not None for b in loaded):
        return None
    directories = [b.manifest.build_dir for b in loaded]
    current = find_build_dir()
    if current is not None and current not in directories:
        directories.append(current)
    for directory in directories:
        try:
            on_disk = read_manifest(directory)  # re-read when the file changed
        except (OSError, InvalidBuildError):
            continue
        if on_disk.find_id(entry_id) is not None:
            return directory
    return None


def loads_generation() -> int:
    """A number that changes whenever a build is loaded or the loader is reset."""
    return _generation
