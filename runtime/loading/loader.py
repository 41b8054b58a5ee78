"""Load a build: read ``manifest.json`` and import the generated modules it lists.

Workflow-mode modules load as ``__wfkit_workflow__.<module>`` and step-mode modules
as ``__wfkit_step__.<module>``, through a meta-path finder over the build
directory. Each is compiled with its line numbers mapped back to the user's source
(through the ``__wfkit_line_map__`` the transformer appends) and with the original
file name, so tracebacks from workflow and step code name the user's file and line.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

BUILD_ENV = "WFKIT_BUILD_DIR"
PREFIXES = {"workflow": "__wfkit_workflow__", "step": "__wfkit_step__"}
WHEEL_BUILD_PACKAGE = "__wfkit_build__"

_lock = threading.RLock()
_loaded: dict[Path, Manifest] = {}


@dataclass(frozen=True)
class Manifest:
    """A loaded build: where it lives and what it declares."""

    build_dir: Path
    root: Path
    data: dict[str, Any]
    workflow_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (relpath, qualname)

    def entries(self, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(source relpath, qualname key, entry) for ``kind`` in workflows/steps/classes."""
        for relpath, by_name in sorted(self.data.get(kind, {}).items()):
            for key, entry in sorted(by_name.items()):
                yield relpath, key, entry

    def modules(self) -> list[tuple[str, str]]:
        """(relpath, dotted module) of every source file with generated code."""
        seen: dict[str, str] = {}
        for kind in ("workflows", "steps", "classes"):
            for relpath, _key, entry in self.entries(kind):
                seen.setdefault(relpath, entry["module"])
        return sorted(seen.items())


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default cwd) with a pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return here


def find_build_dir(root: Path | None = None) -> Path | None:
    """Where the build is: ``WFKIT_BUILD_DIR``, ``<root>/.wfkit/build``, or an installed
    wheel's ``__wfkit_build__`` package. None when there is none."""
    env = os.environ.get(BUILD_ENV)
    if env:
        return Path(env).resolve()
    local = find_root(root) / ".wfkit" / "build"
    if (local / "manifest.json").is_file():
        return local
    spec = importlib.util.find_spec(WHEEL_BUILD_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "manifest.json").is_file():
                return Path(location)
            # An editable install ships only a pointer to the project's own build.
            pointer = Path(location) / "editable.json"
            if pointer.is_file():
                target = Path(json.loads(pointer.read_text(encoding="utf-8"))["build_dir"])
                if (target / "manifest.json").is_file():
                    return target
    return None


def load_build(build_dir: Path | str | None = None, *, root: Path | None = None) -> Manifest:
    """Import every generated workflow and step module of a build (once per process).

    Args:
        build_dir: the build output; default ``find_build_dir()``.
        root: the project root whose sources the build came from (for the sys.path
            entry and original file names); default the build's grandparent when it
            is ``<root>/.wfkit/build``, else cwd.

    Raises:
        FileNotFoundError: there is no build (run ``python -m wfbuild build``).
    """
    resolved = Path(build_dir).resolve() if build_dir else find_build_dir(root)
    if resolved is None or not (resolved / "manifest.json").is_file():
        where = resolved or (find_root(root) / ".wfkit" / "build")
        raise FileNotFoundError(
            f"no wfkit build at {where}: run `python -m wfbuild build` first (or set {BUILD_ENV})"
        )
    with _lock:
        if resolved in _loaded:
            return _loaded[resolved]
        # Built-in steps and codecs every worker needs, whatever the user's modules import.
        importlib.import_module("wfkit.runtime.api.builtin_steps")
        importlib.import_module("wfkit.runtime.api.streams")
        data = json.loads((resolved / "manifest.json").read_text(encoding="utf-8"))
        if root is None:
            root = (
                resolved.parent.parent
                if resolved.parent.name == ".wfkit"
                else Path(data.get("root", Path.cwd()))
            )
        root = root.resolve()
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        workflow_ids = {
            (relpath, key): entry["id"] for relpath, key, entry in _iter(data, "workflows")
        }
        manifest = Manifest(resolved, root, data, workflow_ids)
        _install_finder(manifest)
        for _relpath, module in manifest.modules():
            for prefix in PREFIXES.values():
                importlib.import_module(f"{prefix}.{module}")
        _loaded[resolved] = manifest
        return manifest


def _iter(data: dict[str, Any], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for relpath, by_name in data.get(kind, {}).items():
        for key, entry in by_name.items():
            yield relpath, key, entry


def workflow_id_for(fn: Callable[..., Any], *, root: Path | None = None) -> str:
    """The workflow ID of a function: its ``workflow_id`` tag, else computed from its
    source file (relative to the project root) and qualname, as the transformer does."""
    tagged = getattr(fn, "workflow_id", None)
    if isinstance(tagged, str):
        return tagged
    source = inspect.getsourcefile(fn)
    if source is None:
        raise TypeError(f"{fn!r} is not a workflow function (no source file)")
    path = Path(source).resolve()
    base = find_root(root or path.parent)
    try:
        rel = path.relative_to(base).with_suffix("").as_posix()
    except ValueError:
        raise TypeError(f"{fn!r} is defined outside the project root {base}") from None
    qualname = fn.__qualname__.replace(".<locals>.", "/")
    return f"workflow//./{rel}//{qualname}"


# --- import machinery -------------------------------------------------------------------


class _BuildFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.builds: list[Manifest] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        head, _, rest = fullname.partition(".")
        mode = next((m for m, p in PREFIXES.items() if p == head), None)
        if mode is None:
            return None
        if not rest:
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        for manifest in self.builds:
            base = manifest.build_dir / mode / Path(*rest.split("."))
            for candidate, is_package in (
                (base.with_suffix(".py"), False),
                (base / "__init__.py", True),
            ):
                if candidate.is_file():
                    original = manifest.root / candidate.relative_to(manifest.build_dir / mode)
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


def _install_finder(manifest: Manifest) -> None:
    if manifest not in _finder.builds:
        _finder.builds.insert(0, manifest)
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


def loaded_manifests() -> list[Manifest]:
    """The builds this process has loaded, newest first."""
    with _lock:
        return list(reversed(_loaded.values()))
