"""Which classes a stored value may name, found without importing anything.

A tagged value (``dc``, ``model``, ``enum``, ``ntuple``, ``obj``, ``exc``) names its class
as ``"module:qualname"``. That text comes from storage, so it is data, not code: decoding
never imports the module it names (the import would run that module's side effects)
and never constructs a class outside the list below (a dataclass's ``__post_init__``, an
exception's ``__init__`` would run with the payload). A name resolves only to:

1. **a class of the project**: its module is already imported (looked up in
   ``sys.modules``, never imported here) and belongs to the project: it has generated
   twins (a module of a loaded build), or it shares its top-level package with a module
   a known manifest lists (a loaded build's, or the one ``find_build_dir`` finds, as
   an installed wheel's: ``myapp.jobs`` in it makes ``myapp.models`` the project's), or
   its file lies under a project root (a loaded build's, or the
   directory of the nearest ``pyproject.toml`` above the current one) outside the
   interpreter's prefixes and any ``site-packages``. So a dataclass in ``myapp/models.py``
   that a workflow module imports needs no ceremony. wfkit's own modules and generated
   twins' names never count as the project's;
2. **a registered class**: the build's manifest classes (by their class ID, through
   ``registry.find_class``) and classes passed to ``register_type`` (a third-party
   dataclass, an exception of a library a step raises);
3. **a standard type** on ``STANDARD_CLASSES`` (a fixed list of standard-library
   classes and wfkit's own value types such as ``Request``; their modules are the only
   ones decoding may import), a builtin exception, or a
   wfkit error (an exception class of an imported ``wfkit.*`` module, old module
   names read through ``_renames``).

Anything else raises ``UntrustedClassError``: the decoder turns it into a
``SerializationError`` naming the class and where it sits in the value, except for an
exception, which comes back as ``StepError`` with its type name (as an exception whose
class cannot be rebuilt always did).

Resolution is cached per class name, mode and registry generation (positive answers
only: a module may be imported later), so the hot decode path pays one dict lookup.

Alternatives rejected: importing, then checking (the import already ran whatever the
module does); only the manifest's ``classes`` (a dataclass of ``myapp/models.py`` that
a workflow imports is not listed, and would need ceremony); a decorator on every
project class (the same ceremony); trusting whatever ``sys.modules`` holds (every
library the process imported would offer its classes as gadgets).
"""

from __future__ import annotations

import builtins
import functools
import importlib
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from wfkit.runtime.context import current_mode
from wfkit.runtime.loading import loader, registry
from wfkit.runtime.loading.manifest import read_manifest
from wfkit.runtime.loading.project import find_build_dir, find_root
from wfkit.runtime.loading.twin_names import canonical_module, is_twin_head
from wfkit.runtime.loading.twins import class_path_for_mode
from wfkit.runtime.serialization._common import class_path
from wfkit.runtime.serialization._renames import current_module_name

__all__ = [
    "STANDARD_CLASSES",
    "UntrustedClassError",
    "forget_resolved_classes",
    "register_type",
    "resolve_class",
]

STANDARD_CLASSES: frozenset[str] = frozenset(
    {
        # enums
        "http:HTTPMethod",
        "http:HTTPStatus",
        # named tuples
        "urllib.parse:DefragResult",
        "urllib.parse:ParseResult",
        "urllib.parse:SplitResult",
        # exceptions outside builtins that steps commonly raise
        "asyncio.exceptions:CancelledError",
        "asyncio.exceptions:IncompleteReadError",
        "asyncio.exceptions:InvalidStateError",
        "asyncio.exceptions:LimitOverrunError",
        "binascii:Error",
        "concurrent.futures._base:CancelledError",
        "concurrent.futures._base:InvalidStateError",
        "decimal:DivisionByZero",
        "decimal:InvalidOperation",
        "http.client:HTTPException",
        "http.client:IncompleteRead",
        "http.client:RemoteDisconnected",
        "json.decoder:JSONDecodeError",
        "socket:gaierror",
        "socket:herror",
        "ssl:SSLCertVerificationError",
        "ssl:SSLError",
        "subprocess:CalledProcessError",
        "subprocess:TimeoutExpired",
        "urllib.error:HTTPError",
        "urllib.error:URLError",
        "zlib:error",
        "zoneinfo._common:ZoneInfoNotFoundError",
        # wfkit's own values that cross boundaries
        "wfkit.runtime.api.builtin_steps:FetchResponse",
        "wfkit.runtime.api.webhooks:Request",
        "wfkit.runtime.api.webhooks:Response",
        "wfkit.runtime.context:StepMetadata",
        "wfkit.runtime.context:WorkflowMetadata",
    }
)
"""Standard-library (and wfkit's own) classes any payload may name (``module:qualname``,
as stored); their modules are the only ones decoding may import."""

_NOT_THE_PROJECTS = frozenset({"wfkit", "wfbuild"})


class UntrustedClassError(LookupError):
    """A stored value names a class wfkit may not decode (see the module docstring).

    Attributes:
        class_path: the name as stored (``module:qualname``, or a class ID).
    """

    REASON = (
        "not a class of the project's imported modules, not registered "
        "(wfkit.register_type) and not a standard type, so it is not read back; "
        "nothing was imported"
    )

    def __init__(self, class_path: str) -> None:
        super().__init__(f"class {class_path}: {self.REASON}")
        self.class_path = class_path


_registered: dict[str, type] = {}
"""``register_type``'d classes by their stored name."""
_resolved: dict[tuple[str, str, int], type] = {}
_RESOLVED_MAX = 4096


def register_type(cls: type) -> type:
    """Let values of ``cls`` be read back from storage although it is not the project's.

    Classes defined by the project's own modules (the loaded build's, and the modules
    they import) need no registration; a class of an installed library does (a
    dataclass or pydantic model it defines, an exception a step lets escape). Usable
    as a decorator. Registering again is harmless.

    Args:
        cls: the class, as importable code refers to it (not one defined in a function).

    Returns:
        ``cls``.

    Raises:
        TypeError: ``cls`` is not a class.
        ValueError: ``cls`` is defined inside a function (no name could find it again).
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_type() takes a class, got {type(cls).__name__}")
    if "<locals>" in cls.__qualname__:
        raise ValueError(
            f"{cls.__module__}.{cls.__qualname__} is defined inside a function: define it at "
            "module level so a stored value can name it"
        )
    _registered[class_path(cls)] = cls
    forget_resolved_classes()
    return cls


def forget_resolved_classes() -> None:
    """Drop every cached resolution (a type was registered, builds were unloaded)."""
    _resolved.clear()


def resolve_class(d: dict[str, Any], base: type | None) -> Any:
    """The class a tagged value names, as the code of the current mode sees it.

    ``"cls"`` names the user's class (``myapp.jobs:Parcel``); in workflow mode that is
    the workflow twin's class when the module has one (``twins.class_path_for_mode``),
    so ``isinstance`` holds in client code, steps and workflows alike. A registered
    class ID (``"id"``) is the fallback when the name finds nothing here.

    Raises:
        UntrustedClassError: the name is not one wfkit may decode (nothing was imported).
        TypeError: the class found is not a subclass of ``base``.
    """
    cls: Any = None
    mode = current_mode.get()
    path = d.get("cls")
    if isinstance(path, str):
        key = (path, mode, registry.twins_generation())
        cls = _resolved.get(key)
        if cls is None:
            cls = _find(path, mode)
            if cls is not None:
                if len(_resolved) >= _RESOLVED_MAX:
                    _resolved.clear()
                _resolved[key] = cls
    class_id = d.get("id")
    if cls is None and isinstance(class_id, str):
        cls = registry.find_class(class_id, mode)
    if cls is None:
        raise UntrustedClassError(str(path if isinstance(path, str) else class_id))
    if not isinstance(cls, type) or (base is not None and not issubclass(cls, base)):
        raise TypeError(f"{path!r} is not a {base.__name__ if base else 'class'}")
    return cls


def _find(path: str, mode: str) -> type | None:
    """The class ``path`` may stand for in ``mode`` (the order of the module docstring)."""
    module, _, qualname = path.partition(":")
    if not module or not qualname or "<locals>" in qualname:
        return None
    module = current_module_name(canonical_module(module))
    user_path = f"{module}:{qualname}"
    if _in_project(module):
        found = _imported(class_path_for_mode(user_path, mode))
        if found is not None:
            return found
    registered = _registered.get(user_path)
    if registered is not None:
        return registered
    if user_path in STANDARD_CLASSES:
        return _imported(user_path, from_standard_list=True)
    if module == "builtins" or module.startswith("wfkit."):
        found = _imported(user_path)
        if found is not None and issubclass(found, BaseException):
            return found
    return None


def _imported(path: str, *, from_standard_list: bool = False) -> type | None:
    """The class at ``module:qualname`` in an already imported module (a module of
    ``STANDARD_CLASSES`` is imported when ``from_standard_list``), or None."""
    module_name, _, qualname = path.partition(":")
    obj: Any = builtins if module_name == "builtins" else sys.modules.get(module_name)
    try:
        if obj is None and from_standard_list:
            obj = importlib.import_module(module_name)
        if obj is None:
            return None
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj if isinstance(obj, type) else None


def _in_project(module: str) -> bool:
    """Whether the (user's) module ``module`` is the project's (module docstring, rule 1)."""
    head = module.partition(".")[0]
    if head in _NOT_THE_PROJECTS or is_twin_head(head):
        return False
    if registry.has_twins(module):
        return True
    imported = sys.modules.get(module)
    if imported is None:
        return False
    packages, roots = _project(loader.loads_generation(), os.getcwd())
    if head in packages:
        return True
    file = getattr(imported, "__file__", None)
    return isinstance(file, str) and _under_a_root(os.path.realpath(file), roots)


def _under_a_root(file: str, roots: tuple[str, ...]) -> bool:
    if "site-packages" in file or "dist-packages" in file:
        return False
    if any(file.startswith(prefix) for prefix in _interpreter_prefixes()):
        return False
    return any(file.startswith(root) for root in roots)


@functools.cache
def _interpreter_prefixes() -> tuple[str, ...]:
    """Where the interpreter, its standard library and installed packages live."""
    places = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    places.update(sysconfig.get_paths().values())
    return tuple(os.path.realpath(p) + os.sep for p in places if p)


@functools.lru_cache(maxsize=8)
def _project(loads_generation: int, cwd: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(top-level packages of the known builds' modules, project roots), for the builds
    loaded at ``loads_generation`` and the project around ``cwd``."""
    packages: set[str] = set()
    roots: set[str] = set()
    for build in loader.loaded_builds():
        packages.update(module.partition(".")[0] for _, module in build.manifest.modules())
        roots.add(os.path.realpath(build.root) + os.sep)
    root = find_root(cwd)
    if (root / "pyproject.toml").is_file():
        roots.add(os.path.realpath(root) + os.sep)
    build_dir = find_build_dir(cwd)  # $WFKIT_BUILD_DIR, the project's, an installed wheel's
    if build_dir is not None and (build_dir / "manifest.json").is_file():
        packages.update(_manifest_packages(build_dir))
    packages -= _NOT_THE_PROJECTS
    return frozenset(packages), tuple(sorted(roots))


def _manifest_packages(build_dir: Path) -> set[str]:
    try:
        manifest = read_manifest(build_dir)
    except Exception:  # an unreadable manifest adds nothing; the roots still count
        return set()
    return {module.partition(".")[0] for _, module in manifest.modules()}
