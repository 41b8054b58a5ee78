"""Load a build: check it is complete, then import the generated modules it lists.

Workflow-mode modules load as ``__wfkit_workflow__.<module>`` and step-mode modules
as ``__wfkit_step__.<module>``, through a meta-path finder over the build
directory. Each is compiled with its line numbers mapped back to the user's source
(through the ``__wfkit_line_map__`` the transformer appends) and with the original
file name, so tracebacks from workflow and step code name the user's file and line.
Step twins are then unified with the user's modules (``twins.unify_step_twin``).

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
from wfkit.runtime.loading.manifest import Manifest, read_manifest
from wfkit.runtime.loading.project import (
    BUILD_ENV,
    STATE_DIR,
    WHEEL_BUILD_PACKAGE,
    find_build_dir,
    find_root,
)
from wfkit.runtime.loading.twins import PREFIXES, unify_step_twin

__all__ = [
    "BUILD_ENV",
    "PREFIXES",
    "WHEEL_BUILD_PACKAGE",
    "LoadedBuild",
    "compile_generated",
    "find_build_dir",
    "find_root",
    "load_build",
    "loaded_manifests",
    "reset",
]

_lock = threading.RLock()


@dataclass(frozen=True, eq=False)
class LoadedBuild:
    """A build imported into this process: its manifest and where its sources live."""

    manifest: Manifest
    root: Path

    @property
    def build_dir(self) -> Path:
        return self.manifest.build_dir


_loaded: dict[Path, LoadedBuild] = {}


def load_build(build_dir: Path | str | None = None, *, root: Path | None = None) -> Manifest:
    """Check a build is complete, then import its generated workflow and step modules
    (once per process).

    Args:
        build_dir: the build output; default ``find_build_dir()``.
        root: the directory the manifest's source paths are relative to (it goes on
            ``sys.path`` when not there, and names the files in tracebacks); default
            the project of a ``<root>/.wfkit/build``, else the nearest of the build's
            parent, the ``sys.path`` entries and the current project that holds the
            manifest's sources (for an installed wheel: its site-packages).

    Returns:
        The build's manifest.

    Raises:
        FileNotFoundError: there is no build (run ``python -m wfbuild build``).
        InvalidBuildError: the manifest is unreadable, a generated module it lists is
            missing, a source module cannot be found, or a module registers less
            than the manifest lists; nothing is imported when files are missing.
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
        # Built-in steps and codecs every worker needs, whatever the user's modules import.
        importlib.import_module("wfkit.runtime.api.builtin_steps")
        importlib.import_module("wfkit.runtime.api.streams")
        manifest = read_manifest(resolved)
        source_root = (root or _source_root(manifest)).resolve()
        if str(source_root) not in sys.path:
            sys.path.insert(0, str(source_root))
        _refuse_incomplete(manifest, source_root)
        build = LoadedBuild(manifest, source_root)
        _install_finder(build)
        for _source, module in manifest.modules():
            for prefix in PREFIXES.values():
                importlib.import_module(f"{prefix}.{module}")
            registry.register_twins(module)
        _unify_step_twins(manifest)
        _refuse_unregistered(manifest)
        _loaded[resolved] = build
        return manifest


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


def _refuse_incomplete(manifest: Manifest, root: Path) -> None:
    """Raise InvalidBuildError listing every generated module missing from the build and
    every source module that cannot be found, before anything is imported."""
    problems = [f"missing generated module {m}" for m in manifest.missing_files()]
    for source, module in manifest.modules():
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


def _unify_step_twins(manifest: Manifest) -> None:
    steps = list(manifest.of_kind("steps"))
    for _source, module in manifest.modules():
        twin = sys.modules[f"{PREFIXES['step']}.{module}"]
        original = importlib.import_module(module)
        if twin is not original:
            unify_step_twin(twin, original, (e for e in steps if e.module == module))


def _refuse_unregistered(manifest: Manifest) -> None:
    """Raise InvalidBuildError when a generated module registered less than the manifest
    lists (a build whose files do not match its manifest)."""
    problems = [
        f"workflow {e.id} ({e.files.get('workflow')})"
        for e in manifest.of_kind("workflows")
        if not registry.has_workflow(e.id)
    ]
    problems += [
        f"step {e.id} ({e.files.get('step')})"
        for e in manifest.of_kind("steps")
        if not registry.has_step(e.id)
    ]
    if problems:
        raise InvalidBuildError(
            f"the build at {manifest.build_dir} does not match its manifest; rebuild it "
            "(`python -m wfbuild build`) or reinstall the wheel. Not registered:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


# --- import machinery -------------------------------------------------------------------


class _BuildFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.builds: list[LoadedBuild] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        head, _, rest = fullname.partition(".")
        mode = next((m for m, p in PREFIXES.items() if p == head), None)
        if mode is None:
            return None
        if not rest:
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        for build in self.builds:
            base = build.build_dir / mode / Path(*rest.split("."))
            for candidate, is_package in (
                (base.with_suffix(".py"), False),
                (base / "__init__.py", True),
            ):
                if candidate.is_file():
                    original = build.root / candidate.relative_to(build.build_dir / mode)
                    loader = _GeneratedLoader(candidate, original)
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
    def __init__(self, generated: Path, original: Path) -> None:
        self.generated = generated
        self.original = original

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # Never cache bytecode for generated code: the line map must always apply.
        code = compile_generated(self.generated.read_text(encoding="utf-8"), str(self.original))
        module.__file__ = str(self.original)
        exec(code, module.__dict__)


def compile_generated(source: str, original_filename: str) -> Any:
    """Compile generated code with line numbers mapped back to the original source."""
    tree = ast.parse(source, filename=original_filename)
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
    if build not in _finder.builds:
        _finder.builds.insert(0, build)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def reset() -> None:
    """Forget loaded builds and unload their modules (tests)."""
    with _lock:
        _loaded.clear()
        _finder.builds.clear()
        for name in list(sys.modules):
            if name.split(".", 1)[0] in PREFIXES.values():
                del sys.modules[name]
        registry.forget_twins()
        from wfkit.runtime.serialization._common import class_in_mode, import_class

        import_class.cache_clear()  # they may hold classes of the unloaded twins
        class_in_mode.cache_clear()


def loaded_manifests() -> list[Manifest]:
    """The builds this process has loaded, newest first."""
    with _lock:
        return [build.manifest for build in reversed(_loaded.values())]
