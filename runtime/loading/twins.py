"""A user module and its generated twins: which class each side of a boundary sees.

A module with directives exists up to three times in a worker: the user's own
``myapp.jobs``, its workflow twin ``__wfkit_workflow__.myapp.jobs`` and its step
twin ``__wfkit_step__.myapp.jobs``; each defines its own ``Parcel`` class. Code sees:

- **workflow code**: the workflow twin's classes, for classes of its own module
  and (imports are redirected in workflow mode) of every other module with twins;
  the user's classes for modules without twins, whose workflow twin is the module
  itself;
- **step code** and **client code**: the user's classes. Step-mode imports are not
  redirected, so a step sees ``myapp.models.Parcel`` when it imports it, and the
  loader rebinds each step twin's own top-level classes to the user's
  (``unify_step_twin``), so a step sees that same class when it is defined in its
  own module too, and its method steps run as the user's methods.

A stored value names its class by the **user's** module (``myapp.jobs:Parcel``,
never a twin's); decoding maps that name to the class the receiving mode sees
(``class_path_for_mode``). So ``isinstance(value, Parcel)`` holds in client code,
steps and workflows alike.

An older deployment loaded next to the current one (``twin_names``: its twins have
prefixes of their own) is not unified: the user's modules are the current code, not
its own, so its steps see its step twins' classes, and its step twins import each
other instead of the user's modules (``isolation``).

Alternatives rejected: registering every twin's class and picking by ID (what
wfkit did first: IDs only exist for some classes, exceptions have none, and the
step twin's classes are not the ones a step imports); swapping the user's module
for its step twin in ``sys.modules`` (a module imported before the build loads
keeps the old classes, and a worker's app code would see workflow stubs).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from wfkit.runtime import gen
from wfkit.runtime.loading import registry
from wfkit.runtime.loading.manifest import ManifestEntry
from wfkit.runtime.loading.twin_names import PREFIXES, canonical_module

__all__ = [
    "PREFIXES",
    "canonical_module",
    "class_path_for_mode",
    "unify_step_twin",
]


def class_path_for_mode(path: str, mode: str) -> str:
    """The ``module:qualname`` a stored class name stands for in ``mode``'s code.

    In workflow mode a class of a module with a loaded workflow twin is the twin's;
    everywhere else it is the user's own class, except in the step code of a
    deployment loaded apart (``registry.Tables.isolated``: an older build serving its
    runs during a rollout), which sees its own step twin's classes. The twin is the
    one of the deployment whose code is running (the registry's active scope). Names
    written by older versions (a twin's module) are read as the user's first.
    """
    module, sep, qualname = path.partition(":")
    module = canonical_module(module)
    tables = registry.twin_tables(module)
    if tables is not None and (mode == "workflow" or (mode == "step" and tables.isolated)):
        module = f"{tables.twin_prefixes[mode]}.{module}"
    return f"{module}{sep}{qualname}"


def unify_step_twin(
    twin: ModuleType, original: ModuleType, steps: Iterable[ManifestEntry]
) -> list[str]:
    """Make step code see the user's classes instead of the step twin's own copies.

    Rebinds every class the twin defines at top level to the user's class of the
    same name, registers the user's class for step mode under the twin class's ID,
    and registers method steps (``Class.method``, ``Class#method``) of those classes
    as the user's methods, so ``super()`` and ``cls`` inside them are the user's.

    Args:
        twin: the step twin (``__wfkit_step__.<module>``), already executed.
        original: the user's module.
        steps: the manifest's step entries of this module.

    Returns:
        The names rebound, sorted.
    """
    rebound: dict[str, type] = {}
    for name, value in list(vars(twin).items()):
        if not isinstance(value, type) or value.__module__ != twin.__name__:
            continue
        if value.__qualname__ != name:  # an alias, or a class nested elsewhere
            continue
        counterpart = vars(original).get(name)
        if not isinstance(counterpart, type) or counterpart.__qualname__ != name:
            continue
        setattr(twin, name, counterpart)
        rebound[name] = counterpart
        class_id = registry.class_id_of(value)
        if class_id is not None:
            registry.register_class("step", class_id, counterpart)
    for entry in steps:
        cut = max(entry.key.rfind("."), entry.key.rfind("#"))
        if cut <= 0 or "/" in entry.key:
            continue
        owner = rebound.get(entry.key[:cut])
        if owner is None:
            continue
        method = getattr(owner, entry.key[cut + 1 :], None)
        if method is None or not registry.has_step(entry.id):
            continue
        gen.register_step(entry.id, method, method=registry.get_step(entry.id).method)
    return sorted(rebound)
