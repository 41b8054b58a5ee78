"""Qualified names of expressions, resolved lazily with libcst's scoping rules.

libcst's ``ScopeProvider`` (and the ``ExpressionContextProvider`` it depends on) visits
every node of the module to build every scope, which costs more than the rest of the
transform. The analysis asks for qualified names of a few expressions only (decorators
and bases of classes, callees in workflow bodies), so :class:`NameResolver` finds the
scopes enclosing such an expression by walking up the tree and collects the names bound
in each of those scopes on first use.

It follows ``ScopeProvider`` + ``Scope.get_qualified_names_for`` exactly for modules
without ``global``, ``nonlocal``, ``:=`` or ``match`` (:func:`supported` tells), which
redirect or create bindings in ways this resolver does not model; the analysis uses
libcst's providers for those modules.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator, Mapping

import libcst as cst
from libcst.helpers import get_full_name_for_node

__all__ = ["SCOPE_NODES", "NameResolver", "supported"]

SCOPE_NODES = (
    cst.FunctionDef,
    cst.Lambda,
    cst.ClassDef,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
# libcst node classes are final: hot loops test ``type(n)`` (isinstance on libcst's
# ABC-based classes costs several times more)
_SCOPE_TYPES = frozenset(SCOPE_NODES)
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef})
_IMPORTS = frozenset({cst.Import, cst.ImportFrom})
_TARGETS = frozenset({cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For})
_UNSUPPORTED = (ast.Global, ast.Nonlocal, ast.NamedExpr, ast.Match)
_UNSUPPORTED_TEXT = ("global", "nonlocal", ":=", "match")

# A binding: the import statement, def or class that made it, the Param or CompFor of a
# parameter or comprehension target, or None for any other assignment.
Binding = cst.CSTNode | None
Bindings = dict[str, list[Binding]]


def supported(tree: ast.Module, source: str | None = None) -> bool:
    """True when :class:`NameResolver` resolves names in ``tree`` exactly as libcst does.

    Args:
        tree: the module's AST.
        source: its text, if known: without the keywords and ``:=`` of the constructs
            in question, the AST need not be walked.
    """
    if source is not None and not any(word in source for word in _UNSUPPORTED_TEXT):
        return True
    return not any(isinstance(node, _UNSUPPORTED) for node in ast.walk(tree))


def _dotted_names(node: cst.BaseExpression) -> Iterator[str]:
    """libcst's ``_gen_dotted_names`` (names only): ``a.b.c`` -> ``a.b.c``, ``a.b``, ``a``."""
    if isinstance(node, cst.Name):
        yield node.value
    elif isinstance(node, cst.Attribute):
        value = node.value
        if isinstance(value, cst.Call):
            if isinstance(value.func, cst.Attribute | cst.Name):
                yield from _dotted_names(value.func)
        elif isinstance(value, cst.Attribute | cst.Name):
            inner = list(_dotted_names(value))
            if inner:
                yield f"{inner[0]}.{node.attr.value}"
                yield from inner


def _stored_names(target: cst.BaseExpression) -> Iterator[str]:
    """Names a target expression binds (attributes and subscripts bind none)."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, cst.Tuple | cst.List):
        for element in target.elements:
            yield from _stored_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _stored_names(target.value)


def _import_qualified_names(node: cst.Import | cst.ImportFrom, full_name: str) -> set[str]:
    """libcst's ``ImportAssignment.get_qualified_names_for``."""
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


class NameResolver:
    """Qualified names (from imports and builtins) of expressions of one module."""

    def __init__(
        self,
        module: cst.Module,
        parents: Mapping[cst.CSTNode, cst.CSTNode],
        order: list[cst.CSTNode],
        position: Mapping[cst.CSTNode, int],
        end: Mapping[cst.CSTNode, int],
    ) -> None:
        self.module = module
        self.parents = parents
        self.order = order
        self.position = position
        self.end = end
        self._bindings: dict[cst.CSTNode, Bindings] = {}

    # -- scopes ------------------------------------------------------------------------
    def scope_chain(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The scope-defining nodes whose scope ``node`` is evaluated in, innermost first,
        ending with the module (libcst's rules: decorators, defaults, annotations, bases
        and a comprehension's first iterable belong to the enclosing scope)."""
        chain: list[cst.CSTNode] = []
        path: list[cst.CSTNode] = [node]
        cur = node
        parent = self.parents.get(cur)
        while parent is not None:
            if type(parent) in _SCOPE_TYPES and self._inside(parent, path):
                chain.append(parent)
            path.append(parent)
            cur = parent
            parent = self.parents.get(cur)
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

    def bindings(self, scope: cst.CSTNode) -> Bindings:
        """Names bound in ``scope``'s own scope (computed once per scope)."""
        found = self._bindings.get(scope)
        if found is None:
            found = self._bindings[scope] = self._collect(scope)
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
        if region is None:
            return out
        i, stop = self.position[region], self.end[region]
        order = self.order
        while i < stop:
            node = order[i]
            kind = type(node)
            if kind in _SCOPE_TYPES and node is not scope:
                if kind in _DEFINITIONS:
                    assert isinstance(node, cst.FunctionDef | cst.ClassDef)
                    bind(node.name.value, node)
                i = self.end[node]
                continue
            if kind in _IMPORTS:
                assert isinstance(node, cst.Import | cst.ImportFrom)
                if not isinstance(node.names, cst.ImportStar):
                    for alias in node.names:
                        named = alias.asname.name if alias.asname is not None else alias.name
                        assert isinstance(named, cst.Name | cst.Attribute)
                        for name in _dotted_names(named):
                            bind(name, node)
                i = self.end[node]
                continue
            if kind in _TARGETS:
                assert isinstance(node, cst.AssignTarget | cst.AnnAssign | cst.AugAssign | cst.For)
                for name in _stored_names(node.target):
                    bind(name)
            elif kind is cst.AsName:
                assert isinstance(node, cst.AsName)
                for name in _stored_names(node.name):
                    bind(name)
            i += 1
        return out

    # -- lookups ---------------------------------------------------------------------------
    def _visible(self, chain: list[cst.CSTNode]) -> list[cst.CSTNode]:
        """Class scopes are visible only to their own body, not to nested scopes."""
        return [chain[0], *(s for s in chain[1:] if not isinstance(s, cst.ClassDef))]

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """The import and builtin qualified names of ``node`` (libcst's rules)."""
        full_name = get_full_name_for_node(node)
        if full_name is None:
            return set()
        visible = self._visible(self.scope_chain(node))
        prefix: str | None = full_name
        while prefix:
            for scope in visible:
                bound = self.bindings(scope).get(prefix)
                if bound:
                    results: set[str] = set()
                    for binding in bound:
                        if type(binding) in _IMPORTS:
                            assert isinstance(binding, cst.Import | cst.ImportFrom)
                            results |= _import_qualified_names(binding, full_name)
                    return results
            if hasattr(builtins, prefix):
                return {f"builtins.{prefix}"}
            idx = prefix.rfind(".")
            prefix = None if idx == -1 else prefix[:idx]
        return set()

    # -- closures of nested steps -------------------------------------------------------
    def closure(self, fn: cst.FunctionDef) -> tuple[set[str], dict[str, set[str]]] | None:
        """The names ``fn``'s body reads that are bound in an enclosing function scope.

        Follows ScopeProvider: every access (a loaded or deleted name) anywhere in the body,
        nested scopes included, resolved to the nearest visible scope binding it.

        Returns:
            The names, and for those bound by a def, class or import what they are
            (``"definition"`` / ``"import"``); or None when the body holds something this
            resolver does not model exactly (string annotations naming such a variable;
            a name read before a later assignment in its own scope may resolve
            elsewhere), for the caller to ask libcst.
        """
        chain = self.scope_chain(fn.body)
        enclosing = [s for s in chain[1:-1] if type(s) is not cst.ClassDef]
        if not enclosing:
            return set(), {}
        outer_names: set[str] = set()
        for scope in enclosing:
            outer_names.update(self.bindings(scope))
        names: set[str] = set()
        kinds: dict[str, set[str]] = {}
        parents = self.parents
        i, stop = self.position[fn.body], self.end[fn.body]
        order = self.order
        while i < stop:
            node = order[i]
            i += 1
            kind = type(node)
            if kind is cst.SimpleString:
                assert isinstance(node, cst.SimpleString)
                text = node.evaluated_value
                if isinstance(text, bytes):
                    text = text.decode("latin-1")
                if outer_names & set(_IDENTIFIER.findall(text)):
                    return None  # perhaps a string annotation libcst parses
                continue
            if kind is not cst.Name:
                continue
            assert isinstance(node, cst.Name)
            if not _is_access(node, parents):
                continue
            access_chain = self.scope_chain(node)
            visible = self._visible(access_chain)
            name = self._access_name(node, visible)
            for scope in visible:
                bound = self.bindings(scope).get(name)
                if not bound:
                    continue
                if scope is access_chain[0] and name in outer_names:
                    if any(type(b) not in _EARLY for b in bound):
                        return None  # may be read before its assignment: libcst looks outside
                if scope in enclosing:
                    names.add(name)
                    for binding in bound:
                        if type(binding) in _DEFINITIONS:
                            kinds.setdefault(name, set()).add("definition")
                        elif type(binding) in _IMPORTS:
                            kinds.setdefault(name, set()).add("import")
                break
        return names, kinds

    def _access_name(self, name: cst.Name, visible: list[cst.CSTNode]) -> str:
        """The name ScopeProvider records an access under: for the head of an attribute
        chain, the longest dotted prefix bound in scope (``a.b`` of ``a.b.c`` after
        ``import a.b``), else the name itself."""
        top: cst.Attribute | None = None  # the outermost attribute, up to a call
        parents = self.parents
        cur: cst.CSTNode = name
        parent = parents.get(cur)
        while parent is not None and type(parent) is not cst.Call:
            if type(parent) is cst.Attribute:
                assert isinstance(parent, cst.Attribute)
                top = parent
            elif isinstance(parent, cst.BaseStatement | cst.BaseSmallStatement):
                break
            cur, parent = parent, parents.get(parent)
        if top is not None:
            for candidate in _dotted_names(top):
                if hasattr(builtins, candidate) or any(
                    candidate in self.bindings(scope) for scope in visible
                ):
                    return candidate
        return name.value


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EARLY = frozenset({cst.Param, cst.CompFor})  # bound before anything in their scope runs
_CONTAINERS = frozenset({cst.Tuple, cst.List, cst.StarredElement, cst.Element})
_STORE_FIELDS: dict[type[cst.CSTNode], str] = {
    cst.AssignTarget: "target",
    cst.AnnAssign: "target",
    cst.AugAssign: "target",
    cst.For: "target",
    cst.CompFor: "target",
    cst.AsName: "name",
}


def _is_access(name: cst.Name, parents: Mapping[cst.CSTNode, cst.CSTNode]) -> bool:
    """True when ScopeProvider records ``name`` as an access (a load or a ``del``)."""
    parent = parents.get(name)
    kind = type(parent)
    if kind is cst.Attribute:
        assert isinstance(parent, cst.Attribute)
        return name is not parent.attr
    if kind in _DEFINITIONS or kind is cst.Param:
        assert isinstance(parent, cst.FunctionDef | cst.ClassDef | cst.Param)
        if name is parent.name:
            return False
    if kind is cst.Arg:
        assert isinstance(parent, cst.Arg)
        return name is not parent.keyword
    if kind is cst.NameItem:  # global / nonlocal
        return False
    # stored through tuples and lists: `for (a, *b) in ...`
    child: cst.CSTNode = name
    while type(parent) in _CONTAINERS:
        assert parent is not None
        child, parent = parent, parents.get(parent)
    if parent is not None:
        field = _STORE_FIELDS.get(type(parent))
        if field is not None and getattr(parent, field) is child:
            return False
    # names inside an import statement are not accesses
    cur: cst.CSTNode | None = parent
    while cur is not None and not isinstance(cur, cst.BaseStatement):
        if type(cur) in _IMPORTS:
            return False
        cur = parents.get(cur)
    return True
