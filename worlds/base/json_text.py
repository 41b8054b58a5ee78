"""JSON text as the worlds store it, encoded and read back without the per-call
set-up of ``json.dumps``/``json.loads``.

Every event's data, and most record columns, go through these several times per
step: ``json.dumps(value, separators=...)`` builds a new encoder per call, and
``json.loads`` runs three Python-level frames and two regular-expression matches
around the C scanner. Both functions here give exactly what those calls give.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

__all__ = ["dump_json", "load_json"]

dump_json = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps(value, separators=(",", ":"))``: compact, ASCII-only JSON text."""

# The scanner ``json.loads`` runs (typeshed misdeclares ``make_scanner``'s argument).
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def load_json(text: str) -> Any:
    """``json.loads(text)``. Text that does not start with a JSON value, or has
    anything after it (whitespace included), takes ``json.loads`` itself, so
    errors and their messages are the standard ones (as does a non-``str``)."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, TypeError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value
