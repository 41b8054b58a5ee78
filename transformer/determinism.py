"""What a workflow body may not call, and what it may call only through a replay-safe twin.

Both tables are keyed by *qualified* names (libcst's ``QualifiedNameProvider``), so
``from time import time as now; now()`` and ``import random as r; r.randint(1, 6)`` are
recognised exactly like ``time.time()`` and ``random.randint(1, 6)``.
"""

from __future__ import annotations

__all__ = ["DETERMINISTIC_CALLS", "forbidden_reason", "is_deterministic_call"]

_RANDOM_FUNCTIONS = (
    "betavariate binomialvariate choice choices expovariate gammavariate gauss getrandbits "
    "getstate lognormvariate normalvariate paretovariate randbytes randint random randrange "
    "sample seed setstate shuffle triangular uniform vonmisesvariate weibullvariate"
).split()
_SECRETS_FUNCTIONS = "choice randbelow randbits token_bytes token_hex token_urlsafe".split()

DETERMINISTIC_CALLS: frozenset[str] = frozenset(
    [
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "uuid.uuid1",
        "uuid.uuid4",
        "os.urandom",
        *(f"random.{name}" for name in _RANDOM_FUNCTIONS),
        *(f"secrets.{name}" for name in _SECRETS_FUNCTIONS),
    ]
)
"""Calls rewritten in workflow bodies to ``__wfkit__.deterministic("<name>")(...)``."""

_STEP = 'move it into a function marked "use step"'
_FETCH = 'use `await fetch(...)` from wfkit, or make the request in a "use step" function'
_THREAD = "threads run outside the replay; " + _STEP

# (qualified name, prefix match?, why, what to do instead)
_FORBIDDEN: tuple[tuple[str, bool, str], ...] = (
    ("builtins.open", False, f"file I/O is not replayable; {_STEP}"),
    ("builtins.input", False, f"reading stdin blocks the worker; {_STEP}"),
    (
        "time.sleep",
        False,
        "it blocks the worker and is not durable; use `await sleep(...)` from wfkit",
    ),
    ("requests", True, f"HTTP is not replayable; {_FETCH}"),
    ("httpx", True, f"HTTP is not replayable; {_FETCH}"),
    ("aiohttp", True, f"HTTP is not replayable; {_FETCH}"),
    ("urllib.request", True, f"HTTP is not replayable; {_FETCH}"),
    ("http.client", True, f"HTTP is not replayable; {_FETCH}"),
    ("socket", True, f"network I/O is not replayable; {_STEP}"),
    ("subprocess", True, f"processes are not replayable; {_STEP}"),
    ("os.system", False, f"processes are not replayable; {_STEP}"),
    ("os.popen", False, f"processes are not replayable; {_STEP}"),
    ("asyncio.create_subprocess_exec", False, f"processes are not replayable; {_STEP}"),
    ("asyncio.create_subprocess_shell", False, f"processes are not replayable; {_STEP}"),
    ("multiprocessing", True, f"processes are not replayable; {_STEP}"),
    ("threading", True, _THREAD),
    ("concurrent.futures", True, _THREAD),
    ("asyncio.to_thread", False, _THREAD),
)


def is_deterministic_call(qualified_name: str) -> bool:
    """True when a call to ``qualified_name`` is rewritten to its replay-safe twin."""
    return qualified_name in DETERMINISTIC_CALLS


def forbidden_reason(qualified_name: str) -> str | None:
    """Why ``qualified_name`` may not be called in a workflow and what to use instead.

    Returns:
        The explanation, or None when the call is allowed.
    """
    for name, prefix, reason in _FORBIDDEN:
        if qualified_name == name or (prefix and qualified_name.startswith(name + ".")):
            return reason
    return None
