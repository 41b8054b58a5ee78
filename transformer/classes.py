"""Which classes cross process boundaries, and which of them the build registers.

A value of a user class can travel between workflow, step and client processes only if
every process can find the class by its ID, so the build registers it right after its
definition, when the module is imported. That decides the rule (SPEC.md §5):

- *Module scope* is where registration can reach: directly in the module body, or inside
  module-level ``if``/``elif``/``else`` and ``try``/``except``/``else``/``finally`` blocks
  (and ``with``, ``for``, ``while``, ``match``), which Python runs in the module's
  namespace. Nothing between the class and the module is a ``def`` or a ``class``.
  Steps and workflows follow the same rule.
- A class at module scope is *serializable* when it defines ``__wfkit_serialize__`` and
  ``__wfkit_deserialize__`` (or subclasses such a class of the same module), is a
  dataclass, or is a pydantic model (or subclasses one of the same module). Custom-serde
  classes are registered in every module; dataclasses and pydantic models in modules with
  directives.
- A class that defines or inherits the serde methods anywhere else (inside a function or
  another class) cannot be registered: that is an error (WF011), as in the Workflow
  DevKit's SWC plugin. A dataclass or pydantic model there is simply not registered: it
  declared no intent to cross a boundary, and local helper types are common.

Rejected alternatives: registering nested classes through a hook run when the enclosing
function runs (a class made per call has no stable identity to register), and counting
only the module body as top level (version checks such as ``if sys.version_info >= ...``
around a dataclass are ordinary Python and would make it unserializable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst

from wfkit.transformer.cst_index import CSTIndex
from wfkit.transformer.scopes import NameResolver

__all__ = ["ClassFindings", "MisplacedSerdeClass", "enclosing_definition", "find_classes"]

SERDE_METHODS = frozenset({"__wfkit_serialize__", "__wfkit_deserialize__"})
_PYDANTIC_BASES = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel"})
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef, cst.Lambda})


@dataclass(frozen=True)
class MisplacedSerdeClass:
    """A class with serde methods defined inside a function or class (WF011)."""

    node: cst.ClassDef
    owner: cst.FunctionDef | cst.ClassDef
    inherited_from: str | None  # the module's serde class it subclasses, if not its own


@dataclass
class ClassFindings:
    """The classes of one module, by what the build does with them."""

    serializable: set[cst.ClassDef] = field(default_factory=set)
    registered: list[cst.ClassDef] = field(default_factory=list)
    misplaced: list[MisplacedSerdeClass] = field(default_factory=list)


def enclosing_definition(
    node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> cst.FunctionDef | cst.ClassDef | None:
    """The innermost def or class around ``node``, or None when it is at module scope.

    Args:
        node: any node of the tree.
        parents: the tree's parent links.

    Returns:
        None for a node directly in the module body or in module-level ``if``/``try``/...
        blocks; else the def or class whose body holds it.
    """
    parent = parents.get(node)
    while parent is not None:
        if type(parent) in _DEFINITIONS:
            assert isinstance(parent, cst.FunctionDef | cst.ClassDef)  # no class in a lambda
            return parent
        parent = parents.get(parent)
    return None


def find_classes(
    index: CSTIndex, resolver: NameResolver, *, module_has_directives: bool
) -> ClassFindings:
    """Sort the module's classes into serializable, registered and misplaced ones.

    Args:
        index: the module's tree index.
        resolver: its names (a decorator is ``dataclasses.dataclass`` under any alias).
        module_has_directives: dataclasses and pydantic models are registered only then.

    Returns:
        The findings; classes in source order.
    """
    found = ClassFindings()
    serde_names: set[str] = set()
    pydantic_names: set[str] = set()
    nested: list[tuple[cst.ClassDef, cst.FunctionDef | cst.ClassDef]] = []
    for node in index.order:
        if type(node) is not cst.ClassDef:
            continue
        assert isinstance(node, cst.ClassDef)
        owner = enclosing_definition(node, index.parents)
        if owner is not None:
            nested.append((node, owner))
            continue
        base_names = _base_names(node)
        custom = _defines_serde_methods(node) or bool(base_names & serde_names)
        pydantic = bool(base_names & pydantic_names) or any(
            resolver.qualified_names(base) & _PYDANTIC_BASES for base in _bases(node)
        )
        if custom:
            serde_names.add(node.name.value)
        if pydantic:
            pydantic_names.add(node.name.value)
        if custom or pydantic or _is_dataclass(node, resolver):
            found.serializable.add(node)
            if custom or module_has_directives:
                found.registered.append(node)
    for node, owner in nested:
        inherited = sorted(_base_names(node) & serde_names)
        if _defines_serde_methods(node) or inherited:
            parent_serde = None if _defines_serde_methods(node) else inherited[0]
            found.misplaced.append(MisplacedSerdeClass(node, owner, parent_serde))
    return found


def _bases(node: cst.ClassDef) -> list[cst.BaseExpression]:
    return [arg.value for arg in node.bases if arg.keyword is None]


def _base_names(node: cst.ClassDef) -> set[str]:
    return {base.value for base in _bases(node) if isinstance(base, cst.Name)}


def _defines_serde_methods(node: cst.ClassDef) -> bool:
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    return SERDE_METHODS <= {s.name.value for s in body if isinstance(s, cst.FunctionDef)}


def _is_dataclass(node: cst.ClassDef, resolver: NameResolver) -> bool:
    return any(
        "dataclasses.dataclass"
        in resolver.qualified_names(
            d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator
        )
        for d in node.decorators
    )
