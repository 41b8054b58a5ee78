"""The module names generated twins load under, for every deployment.

A build's workflow-mode modules load as ``__wfkit_workflow__.<module>`` and its
step-mode modules as ``__wfkit_step__.<module>`` (the *shared* prefixes, which the
transformer writes into workflow-mode imports). A second build of the same modules in
one process -- an older deployment a worker keeps serving during a rollout -- loads
under prefixes of its own, ``__wfkit_workflow__d_…`` and ``__wfkit_step__d_…``, so the
two builds' modules, classes and functions never mix. Whatever the prefix, the user's
module behind a twin is the name after its first dot.
"""

from __future__ import annotations

__all__ = [
    "PREFIXES",
    "canonical_module",
    "is_twin_head",
    "isolated_prefixes",
]

PREFIXES = {"workflow": "__wfkit_workflow__", "step": "__wfkit_step__"}
"""The shared prefixes, by mode."""

_HEADS = tuple(PREFIXES.values())


def isolated_prefixes(deployment_id: str) -> dict[str, str]:
    """The prefixes, by mode, of a deployment loaded apart from the shared ones."""
    return {mode: f"{prefix}{deployment_id}" for mode, prefix in PREFIXES.items()}


def is_twin_head(head: str) -> bool:
    """Whether a top-level module name is a twin prefix (shared or a deployment's own)."""
    return head.startswith(_HEADS)


def canonical_module(name: str) -> str:
    """The user's module behind a twin's name (``__wfkit_step__.myapp.jobs`` and
    ``__wfkit_step__d_….myapp.jobs`` -> ``myapp.jobs``); other names as they are."""
    head, dot, rest = name.partition(".")
    if dot and is_twin_head(head):
        return rest
    return name
