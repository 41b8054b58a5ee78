"""Import rewrites: relative imports made absolute, workflow-module imports redirected.

Generated modules are loaded under a prefixed name (``__wfkit_workflow__.pkg.mod``), so
``from . import x`` would resolve against the prefix; making it absolute keeps it pointing
at the user's real package. In workflow mode, imports of modules that have directives are
redirected to their workflow-mode twins, so a workflow calling a step defined in another
file gets that file's step proxy rather than its body.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst
from libcst.helpers import get_full_name_for_node

__all__ = ["WORKFLOW_PREFIX", "ImportRewriter", "import_rewrites"]

WORKFLOW_PREFIX = "__wfkit_workflow__"

Replacement = cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]


def _dotted(name: str) -> cst.Attribute | cst.Name:
    head, *rest = name.split(".")
    expr: cst.Attribute | cst.Name = cst.Name(head)
    for part in rest:
        expr = cst.Attribute(value=expr, attr=cst.Name(part))
    return expr


class ImportRewriter:
    """Computes the replacement of each import statement for one mode."""

    def __init__(
        self,
        *,
        module: str,
        is_package: bool,
        workflow_modules: frozenset[str],
        absolute: bool,
        redirect: bool,
    ) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.workflow_modules = workflow_modules
        self.absolute = absolute
        self.redirect = redirect

    def absolute_name(self, node: cst.ImportFrom) -> str | None:
        """The absolute dotted module ``node`` imports from, or None if it cannot be known."""
        module = get_full_name_for_node(node.module) if node.module is not None else None
        level = len(node.relative)
        if level == 0:
            return module
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts):
            return None
        base = parts[: len(parts) - (level - 1)]
        full = [*base, *([module] if module else [])]
        return ".".join(full) if full else None

    def rewrite_from(self, node: cst.ImportFrom) -> cst.ImportFrom | None:
        """The replacement of a ``from ... import`` statement, or None to keep it."""
        target = self.absolute_name(node)
        if target is None:
            return None
        new = target
        if self.redirect:
            names = (
                [get_full_name_for_node(a.name) for a in node.names]
                if not isinstance(node.names, cst.ImportStar)
                else []
            )
            if target in self.workflow_modules or any(
                f"{target}.{n}" in self.workflow_modules for n in names
            ):
                new = f"{WORKFLOW_PREFIX}.{target}"
        if new == target and (not self.absolute or not node.relative):
            return None
        whitespace = node.whitespace_after_from
        if not whitespace.value:
            whitespace = cst.SimpleWhitespace(" ")
        return node.with_changes(relative=(), module=_dotted(new), whitespace_after_from=whitespace)

    def rewrite_import(self, node: cst.Import) -> Replacement | None:
        """The replacement of an ``import`` statement, or None to keep it."""
        if not self.redirect:
            return None
        aliases: list[cst.ImportAlias] = []
        extra: list[str] = []
        changed = False
        for alias in node.names:
            name = get_full_name_for_node(alias.name) or ""
            if name not in self.workflow_modules:
                aliases.append(alias)
                continue
            changed = True
            prefixed = _dotted(f"{WORKFLOW_PREFIX}.{name}")
            if alias.asname is not None:
                aliases.append(alias.with_changes(name=prefixed))
            elif "." not in name:
                aliases.append(
                    alias.with_changes(name=prefixed, asname=cst.AsName(name=cst.Name(name)))
                )
            else:
                aliases.append(alias.with_changes(name=prefixed))
                head = name.split(".")[0]
                if head not in extra:
                    extra.append(head)
        if not changed:
            return None
        new_import = node.with_changes(names=aliases)
        if not extra:
            return new_import
        bind = cst.ImportFrom(
            module=cst.Name(WORKFLOW_PREFIX),
            names=[cst.ImportAlias(name=cst.Name(h)) for h in extra],
        )
        return cst.FlattenSentinel([new_import, bind])


def import_rewrites(
    imports: Iterable[cst.Import | cst.ImportFrom], rewriter: ImportRewriter
) -> dict[cst.CSTNode, Replacement]:
    """Every import statement in ``imports`` that ``rewriter`` changes, with its replacement."""
    out: dict[cst.CSTNode, Replacement] = {}
    for node in imports:
        new: Replacement | None
        if isinstance(node, cst.ImportFrom):
            new = rewriter.rewrite_from(node)
        else:
            new = rewriter.rewrite_import(node)
        if new is not None:
            out[node] = new
    return out


def shadowed_bare_imports(
    imports: Iterable[cst.Import | cst.ImportFrom], rewriter: ImportRewriter
) -> list[tuple[cst.ImportAlias, str]]:
    """Bare imports that a redirect silently rebinds (workflow mode).

    ``import app.billing`` (a workflow module) becomes ``from __wfkit_workflow__ import app``,
    so a plain ``import app.util`` in the same module now races it for the name ``app``.

    Returns:
        ``(alias, head)`` for every such plain bare import.
    """
    if not rewriter.redirect:
        return []
    redirected_heads: set[str] = set()
    plain: list[tuple[cst.ImportAlias, str]] = []
    for node in imports:
        if not isinstance(node, cst.Import):
            continue
        for alias in node.names:
            if alias.asname is not None:
                continue
            name = get_full_name_for_node(alias.name) or ""
            head = name.split(".")[0]
            if name in rewriter.workflow_modules:
                redirected_heads.add(head)
            else:
                plain.append((alias, head))
    return [(alias, head) for alias, head in plain if head in redirected_heads]
