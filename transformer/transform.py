"""``transform_module``: one source file in, three generated modules and IDs out."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from wfkit.transformer.client_mode import ClientModeTransformer
from wfkit.transformer.diagnostics import DiagnosticSink
from wfkit.transformer.directives import is_directive_like
from wfkit.transformer.discovery import Analysis, analyze
from wfkit.transformer.imports import ImportRewriter, import_rewrites, shadowed_bare_imports
from wfkit.transformer.linemap import LineTracker, render_line_map
from wfkit.transformer.modes import ModeTransformer
from wfkit.transformer.naming import is_package_init
from wfkit.transformer.result import MODES, GeneratedModule, Mode, TransformResult
from wfkit.transformer.step_mode import StepModeTransformer
from wfkit.transformer.workflow_mode import WorkflowModeTransformer

__all__ = ["transform_module"]


def transform_module(
    source: str, *, path: str, module: str, workflow_modules: frozenset[str] = frozenset()
) -> TransformResult:
    """Transform one module into its workflow, step and client modes.

    Args:
        source: the module's source text.
        path: its root-relative posix path, with ``.py`` (used in IDs and the header).
        module: its dotted module name (used to make relative imports absolute).
        workflow_modules: dotted names of every module of the build that has directives or
            registered classes; in workflow mode, imports of them are redirected to their
            ``__wfkit_workflow__.`` twins.

    Returns:
        The generated modules (None for all three when there is any error diagnostic), the
        ``workflows``/``steps``/``classes`` manifest fragment and every diagnostic found.
        A module without directives or serializable classes comes out byte-identical.
    """
    sink = DiagnosticSink(path, source)
    try:  # CPython's own parser gives the clearest syntax errors
        syntax = ast.parse(source, filename=path)
    except SyntaxError as exc:
        sink.error("WF000", exc.lineno or 1, exc.offset or 1, f"invalid syntax: {exc.msg}")
        return TransformResult(path, module, None, None, None, diagnostics=sink.sorted())
    except ValueError as exc:  # e.g. a NUL byte in the source
        sink.error("WF000", 1, 1, f"invalid source: {exc}")
        return TransformResult(path, module, None, None, None, diagnostics=sink.sorted())
    if not _may_need_transform(syntax):
        same = GeneratedModule(source)
        return TransformResult(path, module, same, same, same)
    try:
        tree = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        sink.error("WF000", exc.raw_line, exc.raw_column + 1, f"invalid syntax: {exc.message}")
        return TransformResult(path, module, None, None, None, diagnostics=sink.sorted())
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)  # the tree is ours alone
    analysis = analyze(wrapper, sink, path)
    _warn_shadowed_imports(wrapper, analysis, module, path, workflow_modules, sink)
    if sink.has_errors:
        return _result(path, module, analysis, None, sink)
    if not analysis.changes_code:
        same = GeneratedModule(source)
        return _result(
            path, module, analysis, {"workflow": same, "step": same, "client": same}, sink
        )
    # CPython and libcst agree on line numbers when lines end in \n (a lone \r is rare)
    tracker = LineTracker(wrapper.module, syntax if "\r" not in source else None)
    generated: dict[Mode, GeneratedModule] = {
        mode: _generate(mode, wrapper.module, analysis, tracker, path, module, workflow_modules)
        for mode in MODES
    }
    return _result(path, module, analysis, generated, sink)


_TRANSFORMERS: dict[Mode, type[ModeTransformer]] = {
    "workflow": WorkflowModeTransformer,
    "step": StepModeTransformer,
    "client": ClientModeTransformer,
}


def _generate(
    mode: Mode,
    tree: cst.Module,
    analysis: Analysis,
    tracker: LineTracker,
    path: str,
    module: str,
    workflow_modules: frozenset[str],
) -> GeneratedModule:
    """One mode's module: imports rewritten, the mode's transformer run, line map appended."""
    rewriter = ImportRewriter(
        module=module,
        is_package=is_package_init(path),
        workflow_modules=workflow_modules,
        absolute=mode != "client",  # the client module is loaded under its real name
        redirect=mode == "workflow",
    )
    imports = import_rewrites(analysis.imports, rewriter)
    transformer = _TRANSFORMERS[mode](analysis, imports, path, rewrite_calls=mode == "workflow")
    new_module = tree.visit(transformer)
    code, line_map = tracker.generate(new_module, transformer.origins)
    if not code.endswith("\n"):
        code += "\n"
    return GeneratedModule(code + "\n" + render_line_map(line_map), line_map)


def _warn_shadowed_imports(
    wrapper: MetadataWrapper,
    analysis: Analysis,
    module: str,
    path: str,
    workflow_modules: frozenset[str],
    sink: DiagnosticSink,
) -> None:
    if not analysis.has_directives:
        return
    rewriter = ImportRewriter(
        module=module,
        is_package=is_package_init(path),
        workflow_modules=workflow_modules,
        absolute=True,
        redirect=True,
    )
    for alias, head in shadowed_bare_imports(analysis.imports, rewriter):
        start = wrapper.resolve(PositionProvider)[alias].start  # cached after the first
        name = get_full_name_for_node(alias.name) or head
        parent, _, last = name.rpartition(".")
        instead = f"from {parent} import {last}" if parent else f"import {name} as {name}_"
        sink.warning(
            "WF012",
            start.line,
            start.column + 1,
            f"`import {name}` binds `{head}`, which a redirected import of a workflow module "
            f"rebinds to the workflow bundle in workflow mode, so `{name}` may not resolve "
            f"there; write `{instead}` instead",
        )


def _may_need_transform(tree: ast.Module) -> bool:
    """False when the module certainly has no directive (or near-miss) and no serde class.

    Checking this on CPython's AST is an order of magnitude cheaper than libcst's metadata,
    and most modules of an application are plain.
    """
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and is_directive_like(node.value.value)
        ):
            return True
        if isinstance(node, ast.ClassDef):
            names = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if {"__wfkit_serialize__", "__wfkit_deserialize__"} & names:
                return True
    return False


def _result(
    path: str,
    module: str,
    analysis: Analysis,
    generated: dict[Mode, GeneratedModule] | None,
    sink: DiagnosticSink,
) -> TransformResult:
    workflows = {t.key: t.id for t in analysis.targets.values() if t.kind == "workflow"}
    steps = {t.key: t.id for t in analysis.targets.values() if t.kind == "step"}
    classes = {c.name: c.id for c in analysis.classes.values()}
    generated = generated or {}
    return TransformResult(
        path,
        module,
        generated.get("workflow"),
        generated.get("step"),
        generated.get("client"),
        workflows=dict(sorted(workflows.items())),
        steps=dict(sorted(steps.items())),
        classes=dict(sorted(classes.items())),
        diagnostics=sink.sorted(),
        has_directives=analysis.has_directives,
    )
