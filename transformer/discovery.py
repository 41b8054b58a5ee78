"""Find directives, the functions they mark, serializable classes and workflow-body problems.

The analysis indexes the parsed module once (:class:`~wfkit.transformer.cst_index.CSTIndex`:
pre-order, parents) and returns an :class:`Analysis` keyed by node identity; the three
mode transformers then only look nodes up in it. Keeping every decision here means the
modes cannot disagree about what is a step, what its ID is or what gets rewritten.

Qualified names and closures come from :class:`~wfkit.transformer.scopes.NameResolver`
(Python's scoping rules, resolved lazily for the few expressions asked about). libcst's
own metadata is resolved only for positions, when there is a problem to report:
resolving its providers for every module cost most of the transform.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import PositionProvider

from wfkit.transformer.classes import find_classes
from wfkit.transformer.cst_index import CSTIndex, nested_scope
from wfkit.transformer.determinism import forbidden_reason, is_deterministic_call
from wfkit.transformer.diagnostics import DiagnosticSink
from wfkit.transformer.directive_nodes import leading_small_statements, string_value
from wfkit.transformer.directives import DIRECTIVES, Kind, edit_distance_is_one
from wfkit.transformer.naming import make_id
from wfkit.transformer.scopes import ClosureKind, NameResolver

__all__ = ["Analysis", "SerdeClass", "Target", "analyze"]

MethodKind = Literal["function", "static", "class", "instance"]


# libcst node classes are final, so hot loops test ``type(n)`` (isinstance on libcst's
# ABC-based classes costs several times more)
_IMPORTS = frozenset({cst.Import, cst.ImportFrom})
_OWNERS = frozenset({cst.Module, cst.FunctionDef, cst.ClassDef})
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef})
_UNSHIPPABLE: dict[ClosureKind, str] = {
    "definition": "a function or class defined",
    "import": "a module or name imported",
}


@dataclass(eq=False)
class Target:
    """A function marked ``"use step"`` or ``"use workflow"``."""

    kind: Kind
    node: cst.FunctionDef
    key: str  # qualname key: fn, outer/inner, Cls.m, Cls#m
    id: str
    method: MethodKind = "function"
    class_node: cst.ClassDef | None = None
    top: cst.CSTNode | None = None  # the module-level statement that contains it
    nested: bool = False
    closure: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The function's own name."""
        return self.node.name.value


@dataclass(eq=False)
class SerdeClass:
    """A class registered in every mode so its values cross process boundaries."""

    node: cst.ClassDef
    name: str
    id: str


@dataclass
class Analysis:
    """Everything the mode transformers need, keyed by nodes of the analysed tree."""

    targets: dict[cst.FunctionDef, Target] = field(default_factory=dict)
    classes: dict[cst.ClassDef, SerdeClass] = field(default_factory=dict)
    directive_exprs: set[cst.Expr] = field(default_factory=set)
    rewrites: dict[cst.Call, str] = field(default_factory=dict)
    imports: list[cst.Import | cst.ImportFrom] = field(default_factory=list)
    has_directives: bool = False
    parents: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)

    @property
    def changes_code(self) -> bool:
        """False when every mode must return the source byte-identical."""
        return bool(self.targets or self.classes or self.directive_exprs)

    def ancestors_and_self(self, nodes: Iterable[cst.CSTNode]) -> set[cst.CSTNode]:
        """``nodes`` and all their ancestors: the subtrees a transformer must enter."""
        out: set[cst.CSTNode] = set()
        for node in nodes:
            cur: cst.CSTNode | None = node
            while cur is not None and cur not in out:
                out.add(cur)
                cur = self.parents.get(cur)
        return out


class _Analyzer:
    def __init__(self, wrapper: cst.MetadataWrapper, sink: DiagnosticSink, path: str) -> None:
        self.module = wrapper.module
        # libcst metadata (positions) is resolved only to report a problem, then cached
        self.wrapper = wrapper
        self.sink = sink
        self.path = path
        self.result = Analysis()
        self.index = CSTIndex().build(self.module)
        self.resolver = NameResolver(self.module, self.index)
        self.own_directive: dict[cst.CSTNode, tuple[Kind, cst.Expr]] = {}
        self.serializable: set[cst.ClassDef] = set()
        self.module_kind: Kind | None = None
        self.exported: set[str] | None = None

    # -- helpers -----------------------------------------------------------------
    def pos(self, node: cst.CSTNode) -> tuple[int, int]:
        """1-based line and column of ``node``."""
        start = self.wrapper.resolve(PositionProvider)[node].start
        return start.line, start.column + 1

    def error(self, code: str, node: cst.CSTNode, message: str) -> None:
        """Report an error at ``node``."""
        line, col = self.pos(node)
        self.sink.error(code, line, col, message)

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """Qualified names of ``node`` that come from imports or builtins."""
        return self.resolver.qualified_names(node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The parent of ``node`` in the analysed tree."""
        return self.result.parents.get(node)

    # -- passes ------------------------------------------------------------------
    def run(self) -> Analysis:
        """Run every pass and return the analysis."""
        self.result.parents = self.index.parents
        self.result.imports = [
            cast(cst.Import | cst.ImportFrom, n) for n in self.index.order if type(n) in _IMPORTS
        ]
        all_nodes = self.index.order
        self.find_directives(all_nodes)
        self.find_classes()
        self.module_kind, self.exported = self.module_marked()
        self.walk_definitions(self.module, [], [])
        self.check_unique_ids()
        for target in list(self.result.targets.values()):
            if target.kind == "workflow":
                self.scan_workflow_body(target)
            elif target.nested:
                target.closure = self.closure_of(target.node)
        return self.result

    def check_unique_ids(self) -> None:
        """Report a second definition that would get an ID already taken in this file."""
        seen: dict[str, cst.FunctionDef | cst.ClassDef] = {}
        defined: list[tuple[str, cst.FunctionDef | cst.ClassDef, str]] = [
            (t.id, t.node, t.key) for t in self.result.targets.values()
        ] + [(c.id, c.node, c.name) for c in self.result.classes.values()]
        for ident, node, key in sorted(defined, key=lambda d: self.index.position[d[1]]):
            first = seen.setdefault(ident, node)
            if first is not node:
                line, _ = self.pos(first.name)
                # two blocks: the branches of a module-level if/try, choosing a version
                advice = (
                    "so rename one"
                    if self.parent(first) is self.parent(node)
                    else "so define it once and put what differs inside it (or rename one)"
                )
                self.error(
                    "WF014",
                    node.name,
                    f"{key} is defined twice (first on line {line}); both would register as "
                    f"{ident}, {advice}",
                )

    def find_directives(self, all_nodes: list[cst.CSTNode]) -> None:
        """Find directive strings; report misplaced, duplicate, conflicting, misspelled ones."""
        handled: set[cst.CSTNode] = set()
        owners = [n for n in all_nodes if type(n) in _OWNERS]
        for owner in owners:
            lead = leading_small_statements(owner)
            kinds = [DIRECTIVES.get(string_value(s) or "") for s in lead]
            if not lead or kinds[0] is None:
                continue
            first = lead[0]
            assert isinstance(first, cst.Expr) and kinds[0] is not None
            handled.add(first)
            self.own_directive[owner] = (kinds[0], first)
            self.result.directive_exprs.add(first)
            self.result.has_directives = True
            if len(kinds) > 1 and kinds[1] is not None:
                handled.add(lead[1])
                where = "module" if isinstance(owner, cst.Module) else "function"
                if kinds[1] != kinds[0]:
                    self.error(
                        "WF004",
                        lead[1],
                        f'A {where} cannot be both "use {kinds[0]}" and "use {kinds[1]}"; '
                        "keep one directive",
                    )
                else:
                    self.error("WF002", lead[1], f'Duplicate "use {kinds[1]}" directive')
            if isinstance(owner, cst.ClassDef):
                self.error(
                    "WF005",
                    first,
                    f'"use {kinds[0]}" cannot mark a class body; put the directive '
                    "first in the body of each async method instead",
                )
        for node in all_nodes:
            text = string_value(node)
            if text is None or node in handled:
                continue
            if text in DIRECTIVES:
                where = (
                    "file"
                    if isinstance(self.enclosing_owner(node), cst.Module)
                    else "function body"
                )
                self.error(
                    "WF002",
                    node,
                    f'The "{text}" directive must be the first statement of the {where} '
                    "(only comments may precede it)",
                )
            else:
                for real in DIRECTIVES:
                    if edit_distance_is_one(text, real):
                        self.error(
                            "WF003",
                            node,
                            f'Did you mean "{real}"? "{text}" is not a supported directive',
                        )

    def enclosing_owner(self, node: cst.CSTNode) -> cst.CSTNode:
        """The module, function or class whose body contains ``node``."""
        cur: cst.CSTNode | None = self.parent(node)
        while cur is not None and not isinstance(cur, cst.Module | cst.FunctionDef | cst.ClassDef):
            cur = self.parent(cur)
        return cur if cur is not None else self.module

    def find_classes(self) -> None:
        """Find serializable classes and those registered in every mode (classes.py has
        the rule); report serde classes that registration cannot reach (WF011)."""
        found = find_classes(
            self.index, self.resolver, module_has_directives=self.result.has_directives
        )
        self.serializable = found.serializable
        for node in found.registered:
            name = node.name.value
            self.result.classes[node] = SerdeClass(node, name, make_id("class", self.path, name))
        for misplaced in found.misplaced:
            name, owner = misplaced.node.name.value, misplaced.owner
            kind = "class" if isinstance(owner, cst.ClassDef) else "function"
            methods = "__wfkit_serialize__/__wfkit_deserialize__"
            what = f"defines {methods}"
            if misplaced.inherited_from is not None:
                what = f"inherits {methods} from {misplaced.inherited_from}"
            self.error(
                "WF011",
                misplaced.node.name,
                f"Class {name} {what} but is defined inside {kind} {owner.name.value}; a "
                "serializable class "
                "must be at module level (a module-level if/try is fine), where the build "
                f"registers it on import: move it out of {owner.name.value}",
            )

    def module_marked(self) -> tuple[Kind | None, set[str] | None]:
        """The module directive's kind and the names in a literal ``__all__``, if any."""
        directive = self.own_directive.get(self.module)
        if directive is None:
            return None, None
        exported: set[str] | None = None
        literal = m.List() | m.Tuple()
        all_assignment = m.Assign(targets=[m.AssignTarget(m.Name("__all__"))], value=literal)
        all_annotated = m.AnnAssign(target=m.Name("__all__"), value=literal)
        for stmt in self.module.body:
            for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
                if m.matches(small, all_assignment | all_annotated):
                    assert isinstance(small, cst.Assign | cst.AnnAssign)
                    assert isinstance(small.value, cst.List | cst.Tuple)
                    names = [string_value(cst.Expr(e.value)) for e in small.value.elements]
                    if all(n is not None for n in names):
                        exported = {n for n in names if n is not None}
        return directive[0], exported

    def walk_definitions(
        self, container: cst.CSTNode, stack: list[cst.CSTNode], keys: list[str]
    ) -> None:
        """Visit every def/class directly inside ``container`` (a module or a body),
        keeping the chain of enclosing defs and classes."""
        for node in self.index.subtree(container, prune=nested_scope):
            if node is not container and type(node) in _DEFINITIONS:
                self._definition(cast(cst.FunctionDef | cst.ClassDef, node), stack, keys)

    def _definition(
        self, node: cst.FunctionDef | cst.ClassDef, stack: list[cst.CSTNode], keys: list[str]
    ) -> None:
        name = node.name.value
        parent = stack[-1] if stack else None
        if isinstance(node, cst.ClassDef):
            key = (
                f"{keys[-1]}.{name}"
                if isinstance(parent, cst.ClassDef)
                else (f"{keys[-1]}/{name}" if keys else name)
            )
            self.walk_definitions(node.body, [*stack, node], [*keys, key])
            return
        method: MethodKind = "function"
        if isinstance(parent, cst.ClassDef):
            method = self.method_kind(node)
            key = f"{keys[-1]}{'#' if method == 'instance' else '.'}{name}"
        else:
            key = f"{keys[-1]}/{name}" if keys else name
        self.walk_definitions(node.body, [*stack, node], [*keys, key])

        own = self.own_directive.get(node)
        kind: Kind | None = own[0] if own else None
        if kind is None and self.module_kind is not None and not stack and node.asynchronous:
            exported = self.exported
            public = name in exported if exported is not None else not name.startswith("_")
            kind = self.module_kind if public else None
        if kind is None:
            return
        if node.asynchronous is None:
            self.error(
                "WF001",
                node.name,
                f'Functions marked with "use {kind}" must be async functions (`async def {name}`)',
            )
            return
        target = Target(kind, node, key, make_id(kind, self.path, key), method)
        target.top = stack[0] if stack else node
        if any(isinstance(s, cst.ClassDef) for s in stack[1:]):
            self.error(
                "WF005",
                node.name,
                f'"use {kind}" methods must belong to a class declared at module top '
                "level, not inside a function or another class; registration runs at "
                "import and cannot reach it",
            )
            return
        if isinstance(parent, cst.ClassDef):
            target.class_node = parent
            if method == "instance" and kind == "workflow":
                self.error(
                    "WF008",
                    node.name,
                    f'Instance methods cannot be marked with "use workflow"; make '
                    f"{parent.name.value}.{name} a @staticmethod or @classmethod",
                )
                return
            if method == "instance" and parent not in self.serializable:
                self.error(
                    "WF007",
                    node.name,
                    f'Instance method {parent.name.value}#{name} is marked "use step" but '
                    f"class {parent.name.value} is not serializable: define "
                    "__wfkit_serialize__ and __wfkit_deserialize__, or make it a dataclass "
                    "or a pydantic model",
                )
                return
        elif stack:
            if kind == "workflow":
                self.error(
                    "WF005",
                    node.name,
                    f'"use workflow" function {name} must be defined at module top level '
                    "(or as a static/class method), not inside another function",
                )
                return
            target.nested = True
            nonlocal_stmt = next(
                (n for n in self.own_body_nodes(node) if type(n) is cst.Nonlocal), None
            )
            if nonlocal_stmt is not None:
                self.error(
                    "WF013",
                    nonlocal_stmt,
                    f'Nested "use step" function {name} cannot use `nonlocal`: it runs in '
                    "another process with a copy of the closure, so its assignments would "
                    "never reach the enclosing function; return the new value instead",
                )
                return
        if kind == "step" and self.is_generator(node):
            self.error(
                "WF006",
                node.name,
                f'Functions marked with "use step" cannot be generators: {name} contains '
                "`yield`; return a list, or write chunks to get_writable()",
            )
            return
        self.result.targets[node] = target

    def method_kind(self, node: cst.FunctionDef) -> MethodKind:
        """``static``, ``class`` or ``instance``, from the method's decorators."""
        for decorator in node.decorators:
            names = self.qualified_names(decorator.decorator)
            if "builtins.staticmethod" in names:
                return "static"
            if "builtins.classmethod" in names:
                return "class"
        return "instance"

    def own_body_nodes(self, fn: cst.FunctionDef) -> Iterator[cst.CSTNode]:
        """Nodes of ``fn``'s body, not descending into nested defs, classes or lambdas."""
        return self.index.subtree(fn.body, prune=nested_scope)

    def is_generator(self, fn: cst.FunctionDef) -> bool:
        """True when ``fn``'s own body contains ``yield``."""
        return any(type(n) is cst.Yield for n in self.own_body_nodes(fn))

    def scan_workflow_body(self, target: Target) -> None:
        """Report ``yield`` and forbidden calls; record calls to rewrite."""
        for node in self.own_body_nodes(target.node):
            if type(node) is cst.Yield:
                self.error(
                    "WF010",
                    node,
                    f'Functions marked with "use workflow" cannot `yield` ({target.name} '
                    "would become an async generator); return the result, or stream "
                    "values from a step with get_writable()",
                )
        # a nested step's body runs as a step: I/O is allowed there
        for node in self.index.subtree(target.node.body, prune=self.result.targets.__contains__):
            if type(node) is cst.Call:
                self.check_call(node, target)

    def check_call(self, call: cst.Call, target: Target) -> None:
        """Classify one call in a workflow body: forbidden, rewritten or fine."""
        if any(type(n) is cst.Call and self.forbidden(n) for n in self.index.subtree(call.func)):
            return  # `httpx.AsyncClient().get(...)`: report the inner call only
        for qname in sorted(self.qualified_names(call.func)):
            reason = forbidden_reason(qname)
            if reason is not None:
                shown = qname.removeprefix("builtins.")
                self.error(
                    "WF009",
                    call,
                    f'`{shown}` cannot be called in "use workflow" function {target.name}: '
                    f"{reason}",
                )
                return
            if is_deterministic_call(qname):
                self.result.rewrites[call] = qname
                return

    def forbidden(self, call: cst.Call) -> bool:
        """True when ``call`` is I/O a workflow may not do."""
        return any(forbidden_reason(q) for q in self.qualified_names(call.func))

    def closure_of(self, fn: cst.FunctionDef) -> tuple[str, ...]:
        """Names the nested step reads that are bound in an enclosing function; reports
        those that cannot travel with it (WF015)."""
        closure = self.resolver.closure(fn)
        unshippable = {
            name: _UNSHIPPABLE[kind] for name, kind in closure.items() if kind in _UNSHIPPABLE
        }
        return self._report_closure(fn, set(closure), unshippable)

    def _report_closure(
        self, fn: cst.FunctionDef, names: set[str], unshippable: dict[str, str]
    ) -> tuple[str, ...]:
        """Report the closure's unshippable names (WF015); return the sorted closure."""
        names.discard(fn.name.value)
        unshippable.pop(fn.name.value, None)
        for name, what in sorted(unshippable.items()):
            self.error(
                "WF015",
                fn.name,
                f'Nested "use step" function {fn.name.value} uses `{name}`, {what} in the '
                "enclosing function; a step's closure is serialized, so move it to module "
                "level (or inside the step)",
            )
        return tuple(sorted(names))


def analyze(wrapper: cst.MetadataWrapper, sink: DiagnosticSink, path: str) -> Analysis:
    """Analyse a parsed module.

    Args:
        wrapper: the module with metadata (its ``module`` is the tree the modes transform).
        sink: receives every problem found.
        path: the root-relative source path (for IDs).

    Returns:
        The analysis; consult ``sink`` for errors before using it.
    """
    return _Analyzer(wrapper, sink, path).run()
