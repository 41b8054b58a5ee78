"""What a name refers to: Python's scoping rules over a libcst tree, resolved lazily.

The analysis asks two questions about names, and :class:`NameResolver` answers both:

- the *qualified names* of an expression (after ``from time import time as now``, the
  callee ``now`` is ``time.time``), for the decorators and bases of classes and for the
  callees in workflow bodies;
- the *closure* of a nested step: the names its body reads that an enclosing function
  binds, which travel with each call of the step.

The rules are CPython's symbol table (the ``symtable`` module is what the tests compare
closures against): a name bound anywhere in a function (assignment, ``for``/``with``/
``except`` target, ``import``, ``def``, ``class``, ``del``, ``:=``, a ``match`` capture)
is local to it unless declared ``global`` or ``nonlocal``; ``:=`` in a comprehension binds
in the enclosing function; a class body is invisible to the scopes nested in it;
decorators, default values, annotations, bases and a comprehension's first iterable are
evaluated in the enclosing scope; an attribute chain ``a.b.c`` is looked up by its head
``a``. Annotations count as reads, except under ``from __future__ import annotations``;
the text of a string annotation never does.

Three simplifications: at module and class level a name bound several times resolves to
all its bindings (a call is rewritten or rejected when any of them is the import in
question; which one holds when a workflow runs depends on the order its module ran in);
star imports bind nothing (their names are unknown without importing the module); PEP 695
type parameters are bound in the function or class they belong to, not in an annotation
scope of their own.

Rejected alternative: libcst's ``ScopeProvider`` (with ``QualifiedNameProvider``). It
builds every scope of the module up front, which cost more than the rest of the
transform, while the analysis asks about a few expressions; here the scopes around an
expression are found by walking up the tree and the names bound in each are collected
the first time they are needed. It also resolves some names differently from Python: a
dotted name by its longest bound prefix (so a local ``os`` did not shadow an imported
``os.path``), and a read before a later assignment in the same function from the
enclosing scope.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Literal

import libcst as cst
from libcst.helpers import get_full_name_for_node

from wfkit.transformer.cst_index import CSTIndex

__all__ = ["SCOPE_NODES", "Binding", "ClosureKind", "NameResolver"]

SCOPE_NODES = (
    cst.FunctionDef,
    cst.Lambda,
    cst.ClassDef,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)
"""The nodes that open a scope (besides the module)."""

_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
# libcst node classes are final: hot loops test ``type(n)`` (isinstance on libcst's
# ABC-based classes costs several times more)
_SCOPE_TYPES = frozenset(SCOPE_NODES)
_COMPREHENSION_TYPES = frozenset(_COMPREHENSIONS)
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef})
_IMPORTS = frozenset({cst.Import, cst.ImportFrom})
_DECLARATIONS = frozenset({cst.Global, cst.Nonlocal})
_NOTED = _DECLARATIONS | {cst.NamedExpr}
_TARGETS = frozenset({cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.Del})
_CAPTURES = frozenset({cst.MatchAs, cst.MatchStar})
_TYPE_PARAMETERS = frozenset({cst.TypeVar, cst.TypeVarTuple, cst.ParamSpec})

Binding = cst.CSTNode | None
"""What bound a name: the import statement, def or class; the Param or CompFor of a
parameter or comprehension target; None for any other assignment."""

Bindings = dict[str, list[Binding]]
Declaration = Literal["global", "nonlocal"]
ClosureKind = Literal["value", "definition", "import"]
"""What an enclosing function bound a closure name to: a value (an assignment or a
parameter), a def or class, or an import (when bound both ways, a definition wins)."""


def _stored_names(target: cst.BaseExpression) -> Iterator[str]:
    """Names a target expression binds (attributes and subscripts bind none)."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, cst.Tuple | cst.List):
        for element in target.elements:
            yield from _stored_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _stored_names(target.value)


def _head(name: cst.BaseExpression) -> str | None:
    """The first name of a dotted name: ``a`` of ``a.b.c``."""
    while isinstance(name, cst.Attribute):
        name = name.value
    return name.value if isinstance(name, cst.Name) else None


def _import_qualified_names(node: cst.Import | cst.ImportFrom, full_name: str) -> set[str]:
    """The qualified names of ``full_name`` (``a.b.c``) when ``node`` bound its head.

    ``import os.path`` makes ``os.getcwd`` ``os.getcwd``; ``from time import time as now``
    makes ``now`` ``time.time``; a relative ``from . import x`` keeps its dots.
    """
    module = ""
    if isinstance(node, cst.ImportFrom):
        if node.module:
            module = get_full_name_for_node(node.module) or ""
        if node.relative:
            module = "." * len(node.relative) + module
    results: set[str] = set()
    if isinstance(node.names, cst.ImportStar):
        return results
    for alias in node.names:
        real_name = get_full_name_for_node(alias.name)
        if not real_name:
            continue
        parts = real_name.split(".")
        for real in [".".join(parts[:i]) for i in range(len(parts), 0, -1)]:
            as_name = real
            if module and module.endswith("."):
                real = f"{module}{real}"
            elif module:
                real = f"{module}.{real}"
            if alias.asname:
                evaluated = alias.evaluated_alias
                if evaluated is not None:
                    as_name = evaluated
            if full_name.startswith(as_name):
                remaining = full_name.split(as_name, 1)[1]
                if remaining and not remaining.startswith("."):
                    continue
                remaining = remaining.lstrip(".")
                results.add(f"{real}.{remaining}" if remaining else real)
                break
    return results


def _is_future_import(node: cst.ImportFrom) -> bool:
    """True for ``from __future__ import ...``."""
    return isinstance(node.module, cst.Name) and node.module.value == "__future__"


def _has_future_annotations(module: cst.Module) -> bool:
    """True when ``module`` starts with ``from __future__ import annotations``."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and _is_future_import(small):
                names = small.names
                if not isinstance(names, cst.ImportStar) and any(
                    get_full_name_for_node(alias.name) == "annotations" for alias in names
                ):
                    return True
    return False


class NameResolver:
    """Qualified names and closures of one module's expressions (see the module docstring)."""

    def __init__(self, module: cst.Module, index: CSTIndex) -> None:
        self.module = module
        self.index = index
        self.parents = index.parents
        self._raw: dict[cst.CSTNode, Bindings] = {}
        self._bindings: dict[cst.CSTNode, Bindings] = {}
        self._scanned = False
        self._declared: dict[cst.CSTNode, dict[str, Declaration]] = {}
        self._walrus: dict[cst.CSTNode, list[str]] = {}
        # scope -> the (declaring scope, name) pairs whose bindings land in it
        self._redirected: dict[cst.CSTNode, list[tuple[cst.CSTNode, str]]] = {}
        self._annotations_are_reads = not _has_future_annotations(module)

    # -- scopes --------------------------------------------------------------------------
    def scope_chain(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The scopes ``node`` is evaluated in, innermost first, ending with the module.

        Decorators, default values, annotations and bases belong to the scope around the
        def or class; a comprehension's first iterable to the scope around it.
        """
        chain: list[cst.CSTNode] = []
        path: list[cst.CSTNode] = [node]
        parent = self.parents.get(node)
        while parent is not None:
            if type(parent) in _SCOPE_TYPES and self._inside(parent, path):
                chain.append(parent)
            path.append(parent)
            parent = self.parents.get(parent)
        chain.append(self.module)
        return chain

    @staticmethod
    def _inside(scope: cst.CSTNode, path: list[cst.CSTNode]) -> bool:
        """True when the node at ``path[0]`` is in ``scope``'s own scope (``path[-1]`` is
        the child of ``scope`` on the way to it)."""
        child = path[-1]
        if isinstance(scope, cst.ClassDef):
            return child is scope.body
        if isinstance(scope, cst.FunctionDef | cst.Lambda):
            if child is scope.body:
                return True
            if child is not scope.params or len(path) < 3:
                return False
            param, field = path[-2], path[-3]
            if isinstance(param, cst.Param):
                return field is not param.default and field is not param.annotation
            return True
        assert isinstance(scope, _COMPREHENSIONS)
        return not (child is scope.for_in and len(path) >= 2 and path[-2] is scope.for_in.iter)

    @staticmethod
    def _visible(chain: list[cst.CSTNode]) -> list[cst.CSTNode]:
        """Class scopes are visible only to their own body, not to nested scopes."""
        return [chain[0], *(s for s in chain[1:] if type(s) is not cst.ClassDef)]

    # -- bindings ------------------------------------------------------------------------
    def bindings(self, scope: cst.CSTNode) -> Bindings:
        """The names ``scope`` binds, with what bound them: its own bindings minus the
        names it declares ``global``/``nonlocal``, plus those that nested scopes' such
        declarations send to it (computed once per scope)."""
        found = self._bindings.get(scope)
        if found is not None:
            return found
        self._scan()
        declared = self._declared.get(scope, {})
        found = {n: b for n, b in self._own(scope).items() if n not in declared}
        for source, name in self._redirected.get(scope, ()):
            found[name] = [*found.get(name, ()), *self._own(source).get(name, ())]
        self._bindings[scope] = found
        return found

    def _scan(self) -> None:
        """Find the ``global``/``nonlocal`` declarations and ``:=`` targets (once)."""
        if self._scanned:
            return
        self._scanned = True
        noted = [n for n in self.index.order if type(n) in _NOTED]
        for node in noted:
            if isinstance(node, cst.NamedExpr):
                if isinstance(node.target, cst.Name):
                    # `:=` in a comprehension binds in the function around it
                    chain = self.scope_chain(node)
                    owner = next(s for s in chain if type(s) not in _COMPREHENSION_TYPES)
                    self._walrus.setdefault(owner, []).append(node.target.value)
            else:
                assert isinstance(node, cst.Global | cst.Nonlocal)
                kind: Declaration = "global" if isinstance(node, cst.Global) else "nonlocal"
                scope = self.scope_chain(node)[0]
                if scope is self.module:
                    continue  # `global x` at module level changes nothing
                for item in node.names:
                    self._declared.setdefault(scope, {})[item.name.value] = kind
        for scope, names in self._declared.items():
            for name, kind in names.items():
                target = self.module if kind == "global" else self._nonlocal_target(scope, name)
                if target is not None and target is not scope:
                    self._redirected.setdefault(target, []).append((scope, name))

    def _nonlocal_target(self, scope: cst.CSTNode, name: str) -> cst.CSTNode | None:
        """The function whose ``name`` a ``nonlocal name`` in ``scope`` refers to: the
        nearest enclosing one binding it (None when there is none: a SyntaxError)."""
        for outer in self.scope_chain(scope)[:-1]:
            if type(outer) is cst.ClassDef:
                continue
            declared = self._declared.get(outer, {}).get(name)
            if declared == "global":
                return None
            if declared is None and name in self._own(outer):
                return outer
        return None

    def _own(self, scope: cst.CSTNode) -> Bindings:
        """Every name bound syntactically in ``scope``, declared ``global`` or not."""
        found = self._raw.get(scope)
        if found is None:
            found = self._raw[scope] = self._collect(scope)
            for name in self._walrus.get(scope, ()):
                found.setdefault(name, []).append(None)
        return found

    def _collect(self, scope: cst.CSTNode) -> Bindings:
        out: Bindings = {}

        def bind(name: str, binding: Binding = None) -> None:
            out.setdefault(name, []).append(binding)

        region: cst.CSTNode | None = None
        if isinstance(scope, cst.Module):
            region = scope
        elif isinstance(scope, cst.FunctionDef | cst.Lambda):
            params = scope.params
            for param in (*params.posonly_params, *params.params, *params.kwonly_params):
                bind(param.name.value, param)
            for star in (params.star_arg, params.star_kwarg):
                if isinstance(star, cst.Param):
                    bind(star.name.value, star)
            region = scope.body
        elif isinstance(scope, cst.ClassDef):
            region = scope.body
        else:
            assert isinstance(scope, _COMPREHENSIONS)
            for_in: cst.CompFor | None = scope.for_in
            while for_in is not None:
                for name in _stored_names(for_in.target):
                    bind(name, for_in)
                for_in = for_in.inner_for_in
        if isinstance(scope, cst.FunctionDef | cst.ClassDef) and scope.type_parameters:
            for type_param in scope.type_parameters.params:
                bind(type_param.param.name.value)
        if region is None:
            return out
        order, end = self.index.order, self.index.end
        i, stop = self.index.position[region], end[region]
        while i < stop:
            node = order[i]
            kind = type(node)
            if kind in _SCOPE_TYPES and node is not scope:
                if kind in _DEFINITIONS:
                    assert isinstance(node, cst.FunctionDef | cst.ClassDef)
                    bind(node.name.value, node)
                i = end[node]
                continue
            if kind in _IMPORTS:
                assert isinstance(node, cst.Import | cst.ImportFrom)
                if not isinstance(node.names, cst.ImportStar):
                    for alias in node.names:
                        named = alias.asname.name if alias.asname is not None else alias.name
                        assert isinstance(named, cst.BaseExpression)
                        head = _head(named)
                        if head is not None:
                            bind(head, node)
                i = end[node]
                continue
            if kind in _TARGETS:
                assert isinstance(
                    node, cst.AssignTarget | cst.AnnAssign | cst.AugAssign | cst.For | cst.Del
                )
                for name in _stored_names(node.target):
                    bind(name)
            elif kind is cst.AsName:
                assert isinstance(node, cst.AsName)
                for name in _stored_names(node.name):
                    bind(name)
            elif kind in _CAPTURES:
                assert isinstance(node, cst.MatchAs | cst.MatchStar)
                if node.name is not None:
                    bind(node.name.value)
            elif kind is cst.MatchMapping:
                assert isinstance(node, cst.MatchMapping)
                if node.rest is not None:
                    bind(node.rest.value)
            elif kind is cst.TypeAlias:
                assert isinstance(node, cst.TypeAlias)
                bind(node.name.value)
            i += 1
        return out

    # -- lookups ---------------------------------------------------------------------------
    def lookup(
        self, name: str, chain: list[cst.CSTNode]
    ) -> tuple[cst.CSTNode, list[Binding]] | None:
        """The scope that binds ``name`` for code evaluated in ``chain``'s first scope,
        with its bindings; None when no scope does (a builtin, or undefined)."""
        self._scan()
        for scope in self._visible(chain):
            declared = self._declared.get(scope, {}).get(name)
            if declared is not None:
                target = self.module if declared == "global" else self._nonlocal_target(scope, name)
                found = self.bindings(target).get(name) if target is not None else None
                return (target, found) if target is not None and found else None
            found = self.bindings(scope).get(name)
            if found:
                return scope, found
        return None

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """The qualified names ``node`` may refer to through imports or builtins.

        Args:
            node: a name or attribute chain (``now``, ``dataclasses.dataclass``), or a call
                (its callee's names).

        Returns:
            e.g. ``{"time.time"}`` after ``from time import time as now``, or
            ``{"builtins.open"}``; empty for a local variable or anything else.
        """
        full_name = get_full_name_for_node(node)
        if full_name is None:
            return set()
        head = full_name.partition(".")[0]
        found = self.lookup(head, self.scope_chain(node))
        if found is None:
            return {f"builtins.{head}"} if hasattr(builtins, head) else set()
        results: set[str] = set()
        for binding in found[1]:
            if type(binding) in _IMPORTS:
                assert isinstance(binding, cst.Import | cst.ImportFrom)
                results |= _import_qualified_names(binding, full_name)
        return results

    # -- closures of nested steps ----------------------------------------------------------
    def closure(self, fn: cst.FunctionDef) -> dict[str, ClosureKind]:
        """The names ``fn``'s body refers to that an enclosing function binds.

        Every reference in the body counts, nested scopes included (a read, a ``del``, a
        ``nonlocal`` declaration; annotations unless ``from __future__ import
        annotations``): CPython's free variables of ``fn``.

        Returns:
            Each name with what the enclosing function bound it to.
        """
        chain = self.scope_chain(fn.body)
        enclosing = {s for s in chain[1:-1] if type(s) is not cst.ClassDef}
        found: dict[str, ClosureKind] = {}
        if not enclosing:
            return found
        order, end = self.index.order, self.index.end
        i, stop = self.index.position[fn.body], end[fn.body]
        while i < stop:
            node = order[i]
            kind = type(node)
            if kind in _IMPORTS or (kind is cst.Annotation and not self._annotations_are_reads):
                i = end[node]  # an import's names are not variables
                continue
            i += 1
            if kind is not cst.Name:
                continue
            assert isinstance(node, cst.Name)
            if not self._is_reference(node):
                continue
            resolved = self.lookup(node.value, self.scope_chain(node))
            if resolved is not None and resolved[0] in enclosing:
                found[node.value] = _closure_kind(resolved[1])
        return found

    def _is_reference(self, name: cst.Name) -> bool:
        """False for names that are not variables: attribute names, keyword-argument and
        match-keyword names, type parameters. Stores count: they resolve where they bind."""
        parent = self.parents.get(name)
        if isinstance(parent, cst.Attribute):
            return name is not parent.attr
        if isinstance(parent, cst.Arg):
            return name is not parent.keyword
        if isinstance(parent, cst.MatchKeywordElement):
            return name is not parent.key
        return type(parent) not in _TYPE_PARAMETERS


def _closure_kind(bindings: list[Binding]) -> ClosureKind:
    kinds = {type(b) for b in bindings}
    if kinds & _DEFINITIONS:
        return "definition"
    if kinds & _IMPORTS:
        return "import"
    return "value"
