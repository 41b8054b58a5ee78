"""Imports of a deployment loaded apart from the shared twin prefixes (see ``twin_names``).

An older build of the same project, loaded next to the current one, must run its own
code: its workflow twins must import its workflow twins, and its step twins its step
twins. Both are fixed when its generated modules are compiled (the loader parses them
anyway to map line numbers), by rewriting the AST's imports:

- **workflow mode**: the transformer already redirected imports of every module in
  the build to ``__wfkit_workflow__.<module>``; that prefix becomes the deployment's.
- **step mode**: imports stay as the user wrote them (the current build's step code
  sees the user's modules); here, imports of modules in this build become imports of
  this deployment's step twins, the way the transformer redirects workflow mode
  (``import a.b`` -> ``import P.a.b`` + ``from P import a``).

Modules outside the build (no directives, no serializable classes) are shared with
the current code. Alternatives rejected: a second transformer pass at build time
(every build would ship code for a rollout it may never have), and swapping entries
of ``sys.modules`` while a deployment's code runs (other coroutines of the same worker
run at the same time).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from wfkit.runtime.loading.twin_names import PREFIXES

__all__ = ["ImportRedirect"]


class ImportRedirect:
    """Rewrites a generated module's imports for a deployment's own prefixes.

    Args:
        prefixes: the deployment's twin prefix, by mode.
        modules: the dotted names of the modules its build generated.
    """

    def __init__(self, prefixes: Mapping[str, str], modules: frozenset[str]) -> None:
        self.prefixes = dict(prefixes)
        self.modules = modules

    def apply(self, tree: ast.Module, mode: str) -> None:
        """Rewrite ``tree`` (generated code of ``mode``) in place."""
        if mode == "workflow":
            _RenameHead(PREFIXES["workflow"], self.prefixes["workflow"]).visit(tree)
        elif mode == "step":
            _RedirectToTwins(self.prefixes["step"], self.modules).visit(tree)
        ast.fix_missing_locations(tree)


def _renamed(name: str, old: str, new: str) -> str | None:
    if name == old:
        return new
    if name.startswith(old + "."):
        return new + name[len(old) :]
    return None


class _RenameHead(ast.NodeTransformer):
    """``__wfkit_workflow__[.x]`` -> ``<deployment prefix>[.x]`` in imports and names."""

    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new

    def visit_Import(self, node: ast.Import) -> ast.Import:
        for alias in node.names:
            alias.name = _renamed(alias.name, self.old, self.new) or alias.name
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0 and node.module is not None:
            node.module = _renamed(node.module, self.old, self.new) or node.module
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == self.old:
            node.id = self.new
        return node


class _RedirectToTwins(ast.NodeTransformer):
    """Imports of the build's modules -> imports of this deployment's step twins."""

    def __init__(self, prefix: str, modules: frozenset[str]) -> None:
        self.prefix = prefix
        self.modules = modules

    def visit_Import(self, node: ast.Import) -> list[ast.stmt] | ast.Import:
        statements: list[ast.stmt] = []
        kept: list[ast.alias] = []
        for alias in node.names:
            if alias.name not in self.modules:
                kept.append(alias)
                continue
            twin = f"{self.prefix}.{alias.name}"
            if alias.asname is not None:
                statements.append(ast.Import(names=[ast.alias(twin, alias.asname)]))
                continue
            # ``import a.b`` binds ``a``: bind the twin package instead.
            statements.append(ast.Import(names=[ast.alias(twin)]))
            top = alias.name.partition(".")[0]
            statements.append(ast.ImportFrom(self.prefix, [ast.alias(top)], 0))
        if not statements:
            return node
        if kept:
            statements.insert(0, ast.Import(names=kept))
        return [ast.copy_location(s, node) for s in statements]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> list[ast.stmt] | ast.ImportFrom:
        if node.level != 0 or node.module is None:
            return node
        if node.module in self.modules:
            node.module = f"{self.prefix}.{node.module}"
            return node
        # ``from pkg import jobs``: a submodule of the build under a package outside it.
        twins = [a for a in node.names if f"{node.module}.{a.name}" in self.modules]
        if not twins:
            return node
        others = [a for a in node.names if a not in twins]
        statements: list[ast.stmt] = [ast.ImportFrom(f"{self.prefix}.{node.module}", twins, 0)]
        if others:
            statements.insert(0, ast.ImportFrom(node.module, others, 0))
        return [ast.copy_location(s, node) for s in statements]
