"""The build: discover, transform what changed, write the bundles and the manifest.

Two phases. Phase 1 reads every ``*.py`` file and keeps the *candidates*: files
whose text could hold a directive or a ``__wfkit_serialize__`` class. Phase 2
transforms the candidates that the cache (``build-state.json``) cannot answer,
passing ``workflow_modules``, the dotted names of every module that ends up in
the build. A cached file is reused only if the part of that set it can refer to
is unchanged (`relevant_modules`), so adding a workflow module re-transforms the
files that mention it, not the whole tree. A candidate that turns out to hold nothing (a false positive of the
text check) leaves that set, and the files transformed with the larger set are
transformed again; that is at most one more round, since whether a file holds
directives does not depend on the set.

Nothing is written when any file has an error diagnostic. Otherwise generated
modules are written atomically (temp file + rename), outputs of sources that are
gone or no longer hold directives are deleted, then ``manifest.json`` and
``build-state.json`` are written. `plan_build` does everything but transform and
write, which is what ``check`` needs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wfbuild.discover import (
    SourceFile,
    UsageError,
    discover_sources,
    find_root,
    relative_posix,
    resolve_paths,
)
from wfbuild.parallel import TransformFn, TransformJob, transform_all
from wfbuild.state import (
    MODES,
    STATE_FILE,
    BuildState,
    FileEntry,
    load_state,
    modules_hash,
    sha256_hex,
    transformer_fingerprint,
)

if TYPE_CHECKING:
    from wfkit.transformer.result import Diagnostic, TransformResult

MANIFEST_FILE = "manifest.json"
MAX_ROUNDS = 3
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class BuildReport:
    """What a build did.

    Attributes:
        files_scanned: ``*.py`` files discovered.
        files_transformed: files the transformer ran on (0 for an unchanged tree).
        workflows, steps, classes: totals listed in the manifest.
        seconds: wall time of the build.
        out_dir: the build directory.
        files_written: generated files written or deleted (0 when nothing changed).
        warnings: warning diagnostics of the files transformed in this build.
    """

    files_scanned: int
    files_transformed: int
    workflows: int
    steps: int
    classes: int
    seconds: float
    out_dir: Path
    files_written: int = 0
    warnings: tuple[Diagnostic, ...] = ()

    def summary(self) -> str:
        """The one-line summary the CLI prints."""

        def plural(n: int, word: str) -> str:
            return (
                f"{n} {word}"
                if n == 1
                else f"{n} {word}es"
                if word.endswith("s")
                else f"{n} {word}s"
            )

        return (
            f"wfbuild: {plural(self.files_scanned, 'file')} ({self.files_transformed} transformed), "
            f"{plural(self.workflows, 'workflow')}, {plural(self.steps, 'step')}, "
            f"{plural(self.classes, 'class')} in {self.seconds:.2f}s -> {self.out_dir}"
        )


class BuildError(Exception):
    """The sources have errors; nothing was written. ``diagnostics`` holds every one of them."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        files = len({d.path for d in self.diagnostics})
        errors = sum(d.severity == "error" for d in self.diagnostics)
        super().__init__(f"{errors} error(s) in {files} file(s); nothing written")

    def render(self) -> str:
        """All diagnostics, compiler style, followed by the count line."""
        return "\n".join([*(d.render() for d in self.diagnostics), f"wfbuild: {self}"])


@dataclass
class BuildPlan:
    """The state of a build directory relative to the sources, before any transform."""

    root: Path
    out_dir: Path
    paths: list[str]
    sources: list[SourceFile]
    candidates: dict[str, SourceFile]
    previous: BuildState | None
    cached: dict[str, FileEntry] = field(default_factory=dict)
    module_names: dict[str, str] = field(default_factory=dict)

    def provisional_modules(self) -> frozenset[str]:
        """Modules of candidates that are uncached or cached as generated."""
        return frozenset(
            self.module_names[rel]
            for rel in self.candidates
            if rel not in self.cached or self.cached[rel].is_generated
        )

    def modules_keys(self, modules: frozenset[str]) -> dict[str, str]:
        """Per candidate, the hash of the part of ``modules`` its transform can depend on."""
        by_last: dict[str, list[str]] = {}
        for name in modules:
            by_last.setdefault(name.rpartition(".")[2], []).append(name)
        keys = {}
        for rel, source in self.candidates.items():
            relevant = relevant_modules(source.data, self.module_names[rel], modules, by_last)
            keys[rel] = modules_hash(relevant)
        return keys


def relevant_modules(
    data: bytes, module: str, modules: frozenset[str], by_last: dict[str, list[str]]
) -> set[str]:
    """The members of ``modules`` a file's transform can depend on (a sound over-approximation).

    The transformer uses ``workflow_modules`` only to redirect imports. Any import of a
    module names its last component (``import a.b``, ``from a import b``, ``from .b import
    x``), except a relative import of an enclosing package (``from . import x``), so:
    modules whose last component occurs as an identifier in the text, enclosing packages
    when the file has a relative import, and the file's own module.
    """
    tokens = {t.decode("ascii") for t in _IDENTIFIER.findall(data)}
    relevant = {name for token in tokens & by_last.keys() for name in by_last[token]}
    if b"from ." in data:
        relevant |= {name for name in modules if module.startswith(name + ".")}
    if module in modules:
        relevant.add(module)
    return relevant


def module_name_for(path: str) -> str:
    """The dotted module name of a root-relative source path (``pkg/__init__.py`` -> ``pkg``)."""
    from wfkit.transformer import module_name_for as transformer_module_name_for

    return str(transformer_module_name_for(path))


def _module_name_for_cached(path: str, previous: FileEntry | None) -> str:
    # Reuse the recorded name: computing it needs the transformer package (libcst).
    return previous.module if previous is not None else module_name_for(path)


def _outputs_intact(out_dir: Path, rel: str, entry: FileEntry) -> bool:
    if not entry.is_generated:
        return True
    for mode in MODES:
        try:
            data = (out_dir / mode / rel).read_bytes()
        except OSError:
            return False
        if sha256_hex(data) != entry.outputs.get(mode):
            return False
    return True


def resolve_out_dir(root: Path, out: str | os.PathLike[str] | None) -> Path:
    """``out`` resolved (default ``<root>/.wfkit/build``); refuses the root or an ancestor of it."""
    out_dir = (root / ".wfkit" / "build") if out is None else Path(out).resolve()
    if out_dir == root or out_dir in root.parents:
        raise UsageError(f"the out dir {out_dir} must not be the project root or contain it")
    return out_dir


def plan_build(
    paths: Sequence[str | os.PathLike[str]] | None,
    *,
    root: str | os.PathLike[str] | None,
    out: str | os.PathLike[str] | None,
) -> BuildPlan:
    """Discover the sources and match them against ``build-state.json`` (no transform, no write).

    Raises:
        UsageError: bad paths or out dir.
    """
    root_dir = find_root() if root is None else Path(root).resolve()
    if not root_dir.is_dir():
        raise UsageError(f"the root {root} is not a directory")
    out_dir = resolve_out_dir(root_dir, out)
    previous = load_state(out_dir)
    if paths is None and previous is not None and previous.paths:
        # `check` and `is_stale` compare against what was built last.
        resolved = [root_dir / p for p in previous.paths]
        resolved = [p for p in resolved if p.exists()] or [root_dir]
    else:
        resolved = resolve_paths(root_dir, paths)
    sources = discover_sources(root_dir, resolved, out_dir)
    plan = BuildPlan(
        root=root_dir,
        out_dir=out_dir,
        paths=sorted({relative_posix(p, root_dir) for p in resolved}),
        sources=sources,
        candidates={s.relpath: s for s in sources if s.is_candidate},
        previous=previous,
    )
    prior = previous.files if previous is not None and previous.is_current else {}
    for rel, source in plan.candidates.items():
        entry = prior.get(rel)
        plan.module_names[rel] = _module_name_for_cached(rel, entry)
        if (
            entry is not None
            and entry.sha256 == sha256_hex(source.data)
            and _outputs_intact(out_dir, rel, entry)
        ):
            plan.cached[rel] = entry
    return plan


def _entry_from_result(result: TransformResult, data: bytes, modules_key: str) -> FileEntry:
    outputs = {}
    for mode in MODES:
        generated = result.generated(mode)
        if generated is not None:
            outputs[mode] = sha256_hex(generated.code.encode("utf-8"))
    return FileEntry(
        sha256=sha256_hex(data),
        module=result.module,
        workflow_modules=modules_key,
        has_directives=result.has_directives,
        workflows=dict(result.workflows),
        steps=dict(result.steps),
        classes=dict(result.classes),
        outputs=outputs,
    )


def _expected_outputs(entries: dict[str, FileEntry]) -> set[str]:
    return {f"{mode}/{rel}" for rel, e in entries.items() if e.is_generated for mode in MODES}


def _unexpected_outputs(out_dir: Path, expected: set[str]) -> list[Path]:
    found: list[Path] = []
    for mode in MODES:
        top = out_dir / mode
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                path = Path(dirpath) / name
                if name.endswith(".py") and path.relative_to(out_dir).as_posix() not in expected:
                    found.append(path)
    return sorted(found)


def stale_reasons(plan: BuildPlan) -> list[str]:
    """Why the build output does not match the sources (empty when it is up to date)."""
    if plan.previous is None or not (plan.out_dir / MANIFEST_FILE).is_file():
        return [f"no build output in {plan.out_dir}"]
    if not plan.previous.is_current:
        return ["the transformer changed since the last build"]
    if plan.paths != plan.previous.paths:
        return [f"built for paths {plan.previous.paths}, not {plan.paths}"]
    reasons = [f"{rel}: changed or not built" for rel in plan.candidates if rel not in plan.cached]
    keys = plan.modules_keys(plan.provisional_modules())
    reasons += [
        f"{rel}: the workflow modules it imports changed"
        for rel, entry in plan.cached.items()
        if entry.is_generated and entry.workflow_modules != keys[rel]
    ]
    reasons += [
        f"{rel}: removed or no longer a workflow module"
        for rel, entry in plan.previous.files.items()
        if rel not in plan.candidates and entry.is_generated
    ]
    expected = _expected_outputs(plan.cached)
    reasons += [
        f"{p}: not produced by any source" for p in _unexpected_outputs(plan.out_dir, expected)
    ]
    manifest = (plan.out_dir / MANIFEST_FILE).read_bytes()
    if sha256_hex(manifest) != plan.previous.manifest_sha256:
        reasons.append(f"{MANIFEST_FILE}: modified since the last build")
    return reasons


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds it; True when written."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _remove_empty_dirs(out_dir: Path) -> None:
    for mode in MODES:
        for dirpath, _dirs, _files in sorted(os.walk(out_dir / mode), reverse=True):
            path = Path(dirpath)
            if path != out_dir / mode and not any(path.iterdir()):
                path.rmdir()


def _manifest_results(entries: dict[str, FileEntry]) -> Iterable[TransformResult]:
    from wfkit.transformer.result import GeneratedModule, TransformResult

    placeholder = GeneratedModule(code="")
    for rel in sorted(entries):
        entry = entries[rel]
        if entry.is_generated:
            yield TransformResult(
                path=rel, module=entry.module,
                workflow=placeholder, step=placeholder, client=placeholder,
                workflows=entry.workflows, steps=entry.steps, classes=entry.classes,
                has_directives=entry.has_directives,
            )  # fmt: skip


def run_build(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    progress: bool = False,
    transform: TransformFn | None = None,
) -> BuildReport:
    """Build; see `wfbuild.build`. ``transform`` replaces the transformer (tests only)."""
    started = time.perf_counter()
    # An empty list (not None): a build covers the given PATHS or the root, never "what was
    # built last" the way `check` does.
    plan = plan_build(list(paths or []), root=root, out=out)
    if not stale_reasons(plan):
        # Up to date: no transform, no write, and the transformer (libcst) is not even imported.
        _ignore_state_dir(plan.out_dir)
        return _report(plan, plan.cached, set(), 0, started)
    from wfkit.transformer.manifest import build_manifest, dump_manifest

    entries: dict[str, FileEntry] = dict(plan.cached)
    new_code: dict[str, TransformResult] = {}
    transformed: set[str] = set()
    warnings: dict[str, tuple[Diagnostic, ...]] = {}
    for _round in range(MAX_ROUNDS):
        modules = frozenset(
            plan.module_names[rel]
            for rel in plan.candidates
            if rel not in entries or entries[rel].is_generated
        )
        keys = plan.modules_keys(modules)
        todo = [
            rel
            for rel in plan.candidates
            if rel not in entries
            or (entries[rel].is_generated and entries[rel].workflow_modules != keys[rel])
        ]
        if not todo:
            break
        jobs_list = [
            TransformJob(rel, plan.module_names[rel], plan.candidates[rel].data) for rel in todo
        ]
        results = transform_all(
            jobs_list, modules, workers=jobs, progress=progress, transform=transform
        )
        diagnostics = sorted(
            (d for r in results.values() for d in r.diagnostics),
            key=lambda d: (d.path, d.line, d.column),
        )
        if any(not r.ok for r in results.values()):
            raise BuildError(diagnostics)
        for rel in todo:
            result = results[rel]
            entries[rel] = _entry_from_result(result, plan.candidates[rel].data, keys[rel])
            new_code[rel] = result
            warnings[rel] = result.diagnostics
            transformed.add(rel)
    generated = {rel: e for rel, e in entries.items() if e.is_generated}
    _ignore_state_dir(plan.out_dir)  # only now: nothing is written on error
    written = 0
    for rel, result in sorted(new_code.items()):
        if not entries[rel].is_generated:
            continue
        for mode in MODES:
            module = result.generated(mode)
            assert module is not None
            written += _write_atomic(plan.out_dir / mode / rel, module.code.encode("utf-8"))
    if plan.previous is not None or (plan.out_dir / MANIFEST_FILE).exists():
        for stale in _unexpected_outputs(plan.out_dir, _expected_outputs(generated)):
            stale.unlink()
            written += 1
        _remove_empty_dirs(plan.out_dir)
    manifest = dump_manifest(build_manifest(list(_manifest_results(generated)))).encode("utf-8")
    _write_atomic(plan.out_dir / MANIFEST_FILE, manifest)
    state = BuildState(
        transformer=transformer_fingerprint(),
        paths=plan.paths,
        manifest_sha256=sha256_hex(manifest),
        files={rel: entries[rel] for rel in sorted(entries)},
    )
    _write_atomic(plan.out_dir / STATE_FILE, state.dumps().encode("utf-8"))
    report = _report(plan, entries, transformed, written, started)
    return replace(report, warnings=tuple(d for rel in sorted(warnings) for d in warnings[rel]))


def _ignore_state_dir(out_dir: Path) -> None:
    """Give ``.wfkit/`` its own ``.gitignore`` (``*``) when the build goes into it: the
    local world keeps users' data there too (the runtime's ``ensure_state_dir`` does the
    same when it opens the world first)."""
    state = out_dir.parent
    if state.name == ".wfkit" and not (state / ".gitignore").exists():
        state.mkdir(parents=True, exist_ok=True)
        (state / ".gitignore").write_text("*\n", encoding="utf-8")


def _report(
    plan: BuildPlan,
    entries: dict[str, FileEntry],
    transformed: set[str],
    written: int,
    started: float,
) -> BuildReport:
    generated = [e for e in entries.values() if e.is_generated]
    return BuildReport(
        files_scanned=len(plan.sources),
        files_transformed=len(transformed),
        workflows=sum(len(e.workflows) for e in generated),
        steps=sum(len(e.steps) for e in generated),
        classes=sum(len(e.classes) for e in generated),
        seconds=time.perf_counter() - started,
        out_dir=plan.out_dir,
        files_written=written,
    )


def check_stale(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The reasons the build output is stale or missing (empty when up to date)."""
    return stale_reasons(plan_build(paths, root=root, out=out))
