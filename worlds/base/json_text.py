"""JSON text as the worlds store it, encoded and read back without the per-call
set-up of ``json.dumps``/``json.loads``.

Every event's data, and most record columns, go through these several times per
step: ``json.dumps(value, separators=...)`` builds a new encoder per call, and
``json.loads`` runs three Python-level frames and two regular-expression matches
around the C scanner. Both functions here give exactly what those calls give.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from json.scanner import make_scanner
from typing import Any

__all__ = ["dump_json", "load_json"]

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _new_c_encoder() -> Any:
    # What ``JSONEncoder.encode`` ends in, minus its Python frames, with its own
    # ``markers`` dict (the circular-reference check).
    return c_make_encoder(
        {}, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, True
    )


_ENCODERS = threading.local()


def _dump_json_c(value: Any) -> str:
    # Making the C encoder costs as much as encoding a small value: each thread
    # keeps one. It is taken out while in use (a nested call on the same thread,
    # through a mapping's Python ``items``, makes its own) and put back only after
    # a success: an encoding that failed may leave entries in its ``markers``,
    # which an encoding that completes removes again.
    encoder = getattr(_ENCODERS, "encoder", None)
    if encoder is None:
        encoder = _new_c_encoder()
    else:
        _ENCODERS.encoder = None
    text = "".join(encoder(value, 0))
    _ENCODERS.encoder = encoder
    return text


dump_json: Callable[[Any], str] = _ENCODER.encode if c_make_encoder is None else _dump_json_c
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
