"""Payloads at rest: compressed and/or encrypted envelopes around ``<ser>`` data and chunks.

The Workflow DevKit 4.1 stores every payload as bytes behind a 4-byte format prefix
(``devl``, ``encr``, ``gzip``, ...). wfkit's payloads live inside JSON event data, so
the same formats appear as tagged dicts (a user dict holding ``"$t"`` is always
escaped by ``serialize``, so no user value can look like one)::

    {"$t": "encr", "kid": key id, "v": base64(nonce[12] + AES-256-GCM(frame) + tag[16])}
    {"$t": "gzip", "v": base64(gzip(JSON text))}

and stream chunks, which are bytes already, carry the prefixes themselves::

    b"encr" + len(kid)[1] + kid + nonce[12] + AES-256-GCM(frame) + tag[16]
    b"gzip" + gzip(chunk)

Inside ``encr`` the plaintext ``frame`` is the payload's bytes (JSON text, or the
chunk as ``encode_chunk`` makes it), or ``b"gzip"`` + their gzip when compressed:
compress, then encrypt (ciphertext does not compress). JSON text and chunks never
start with ``encr``/``gzip`` (they start with ``{ [ " - t f n``, a digit, or a
chunk marker), so a reader tells the layers apart by their first four bytes. The
GCM additional data is ``b"wfkit:encr:" + kid``, so a payload cannot be passed off
under another key id. The nonce is random per payload (96 bits; NIST's limit of
2**32 payloads per key is far beyond one key's life here).

Errors (``step_failed``, ``run_failed``, ``step_retrying``) keep their ``type`` (a
class name from the code, which the inspector and ``inspect`` show) readable; their
message, traceback and value, which may quote user data, go into ``"sealed"``::

    {"type": "builtins.ValueError", "message": "[encrypted]", "sealed": {"$t": "encr", ...}}

Reading is bounded: a gzip layer may expand to ``max_inflated`` bytes at most and
is read incrementally, so a crafted payload cannot be a decompression bomb. Opening
a payload whose key this process lacks, or whose authentication fails, raises
``PayloadDecryptionError`` naming the key id; plain payloads (old logs, or written
before encryption was turned on) pass through untouched.

Alternatives rejected: encrypting whole event data (worlds fold tokens, step names and
retry times out of it, and the inspector needs statuses and error types); a binary
column for sealed payloads (a schema change in every world, for what base64 inside
the JSON already carries); Fernet (AES-128-CBC + HMAC, longer tokens, and not the
DevKit's AES-256-GCM); zstd (not in the standard library; gzip is the DevKit's other
format and good enough for JSON).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import zlib
from typing import TYPE_CHECKING, Any

from wfkit.runtime.errors import PayloadDecryptionError, SerializationError
from wfkit.runtime.serialization._common import TAG
from wfkit.runtime.serialization.keys import PayloadSettings, current_settings

if TYPE_CHECKING:  # imported when first used: only processes that encrypt need it
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENCRYPTED",
    "GZIP",
    "SEALED_TAGS",
    "describe_sealed",
    "is_sealed",
    "open_bytes",
    "open_error",
    "open_payload",
    "reveal",
    "seal",
    "seal_bytes",
    "seal_error",
]

ENCRYPTED = "encr"
GZIP = "gzip"
SEALED_TAGS = frozenset((ENCRYPTED, GZIP))
_ENCR = ENCRYPTED.encode("ascii")
_GZIP = GZIP.encode("ascii")
_NONCE = 12
_TAG_BYTES = 16
ERROR_PLACEHOLDER = "[encrypted]"
_JSON_OUT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_JSON_IN = json.JSONDecoder()
_ERROR_SECRET_KEYS = ("message", "stack", "value")


# --- sealing (writing) -------------------------------------------------------------


def seal(data: Any) -> Any:
    """``<ser>`` data as it is stored: an ``encr``/``gzip`` envelope, or ``data`` itself
    when neither encryption nor compression applies (the common, unconfigured case)."""
    settings = current_settings()
    if settings.encrypt_with is None and settings.compress_over is None:
        return data
    raw = _JSON_OUT.encode(data).encode("utf-8")
    frame = _maybe_compress(raw, settings)
    if settings.encrypt_with is not None:
        key_id, key = settings.encrypt_with
        blob = _encrypt(key_id, key, frame)
        return {TAG: ENCRYPTED, "kid": key_id, "v": base64.b64encode(blob).decode("ascii")}
    if frame is raw or (len(frame) - len(_GZIP)) * 4 // 3 >= len(raw):
        return data  # base64 would eat what gzip saved
    return {TAG: GZIP, "v": base64.b64encode(frame[len(_GZIP) :]).decode("ascii")}


def seal_bytes(raw: bytes) -> bytes:
    """A stream chunk as it is stored (see the module docstring); ``raw`` unchanged
    when neither encryption nor compression applies."""
    settings = current_settings()
    if settings.encrypt_with is None and settings.compress_over is None:
        return raw
    frame = _maybe_compress(raw, settings)
    if settings.encrypt_with is None:
        return frame
    key_id, key = settings.encrypt_with
    kid = key_id.encode("utf-8")
    return _ENCR + bytes((len(kid),)) + kid + _encrypt(key_id, key, frame)


def seal_error(info: dict[str, Any]) -> dict[str, Any]:
    """An ErrorInfo (``serialize_error``) as stored: message, stack and value encrypted
    when encryption is on (``type`` stays readable), else ``info`` itself."""
    if current_settings().encrypt_with is None:
        return info
    secret = {k: info[k] for k in _ERROR_SECRET_KEYS if k in info}
    shown = {k: v for k, v in info.items() if k not in _ERROR_SECRET_KEYS}
    return {**shown, "message": ERROR_PLACEHOLDER, "sealed": seal(secret)}


def _maybe_compress(raw: bytes, settings: PayloadSettings) -> bytes:
    threshold = settings.compress_over
    if threshold is None or len(raw) <= threshold or len(raw) > settings.max_inflated:
        return raw
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    packed = _GZIP + packer.compress(raw) + packer.flush()
    return packed if len(packed) < len(raw) else raw


def _encrypt(key_id: str, key: bytes, frame: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + _cipher(key).encrypt(nonce, frame, _aad(key_id))


@functools.lru_cache(maxsize=32)
def _cipher(key: bytes) -> AESGCM:
    """One AESGCM per key (building one expands the key schedule: not per payload)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _aad(key_id: str) -> bytes:
    return b"wfkit:encr:" + key_id.encode("utf-8")


# --- opening (reading) -------------------------------------------------------------


def is_sealed(data: Any) -> bool:
    """Whether ``data`` is an ``encr``/``gzip`` envelope (not plain ``<ser>`` data)."""
    return type(data) is dict and data.get(TAG) in SEALED_TAGS


def open_payload(data: Any) -> Any:
    """The ``<ser>`` data a stored payload holds; plain data is returned as it is.

    Raises:
        PayloadDecryptionError: encrypted with a key id this process has no key for,
            or authentication failed (wrong key, altered bytes).
        SerializationError: a malformed envelope, or a compressed payload that expands
            beyond the configured bound.
    """
    if type(data) is not dict or data.get(TAG) not in SEALED_TAGS:  # is_sealed, inline
        return data
    settings = current_settings()
    encoded = data.get("v")
    if not isinstance(encoded, str):
        raise SerializationError(f"malformed {data[TAG]!r} payload: no base64 body")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SerializationError(f"malformed {data[TAG]!r} payload: body is not base64") from None
    if data[TAG] == GZIP:
        raw = _inflate(blob, settings)
    else:
        key_id = data.get("kid")
        if not isinstance(key_id, str):
            raise SerializationError("malformed 'encr' payload: no key id")
        raw = _unframe(_decrypt(key_id, blob, settings), settings)
    try:
        return _JSON_IN.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(f"malformed {data[TAG]!r} payload: {exc}") from None


def open_bytes(data: bytes) -> bytes:
    """The chunk bytes ``seal_bytes`` stored; other bytes are returned as they are.

    Raises:
        as ``open_payload``.
    """
    if data[:4] == _ENCR:
        length = data[4] if len(data) > 4 else 0
        kid = data[5 : 5 + length]
        if not length or len(kid) < length:
            raise SerializationError("malformed 'encr' chunk: truncated key id")
        settings = current_settings()
        return _unframe(
            _decrypt(kid.decode("utf-8", "replace"), data[5 + length :], settings), settings
        )
    if data[:4] == _GZIP:
        return _inflate(data[4:], current_settings())
    return data


def open_error(info: Any) -> Any:
    """The ErrorInfo ``seal_error`` sealed, whole again; other values as they are.

    Raises:
        as ``open_payload``.
    """
    if type(info) is not dict or "sealed" not in info:
        return info
    secret = open_payload(info["sealed"])
    if type(secret) is not dict:
        raise SerializationError("malformed sealed error: not an object")
    shown = {k: v for k, v in info.items() if k != "sealed"}
    return {**shown, **secret}


def _unframe(frame: bytes, settings: PayloadSettings) -> bytes:
    return _inflate(frame[4:], settings) if frame[:4] == _GZIP else frame


def _decrypt(key_id: str, blob: bytes, settings: PayloadSettings) -> bytes:
    key = settings.key_for(key_id)
    if key is None:
        raise PayloadDecryptionError(
            f"payload is encrypted with key id {key_id!r}, which this process does not have "
            "(set WFKIT_ENCRYPTION_KEY or WFKIT_DECRYPTION_KEYS, or pass it to "
            "wfkit.configure_payloads)",
            key_id=key_id,
        )
    if len(blob) < _NONCE + _TAG_BYTES:
        raise PayloadDecryptionError(
            f"payload encrypted with key id {key_id!r} is truncated", key_id=key_id
        )
    try:
        return _cipher(key).decrypt(blob[:_NONCE], blob[_NONCE:], _aad(key_id))
    except _invalid_tag():  # (evaluated only when something was raised)
        raise PayloadDecryptionError(
            f"payload encrypted with key id {key_id!r} failed authentication: the key "
            "configured under that id is not the one it was written with, or the stored "
            "bytes were altered",
            key_id=key_id,
        ) from None


@functools.cache
def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def _inflate(packed: bytes, settings: PayloadSettings) -> bytes:
    limit = settings.max_inflated
    unpacker = zlib.decompressobj(31)
    try:
        raw = unpacker.decompress(packed, limit + 1)
    except zlib.error as exc:
        raise SerializationError(f"malformed 'gzip' payload: {exc}") from None
    if len(raw) > limit or unpacker.unconsumed_tail:
        raise SerializationError(
            f"compressed payload expands beyond {limit} bytes; refused (a decompression bomb?)"
        )
    if not unpacker.eof:
        raise SerializationError("malformed 'gzip' payload: truncated")
    return raw


# --- showing (inspector, inspect) --------------------------------------------------


def describe_sealed(data: dict[str, Any]) -> str:
    """What the inspector shows for a payload it cannot open."""
    if data.get(TAG) == ENCRYPTED:
        return f"[encrypted with key {data.get('kid')}]"
    return "[compressed]"


def reveal(value: Any) -> Any:
    """``value`` (a record field, event data) with every envelope opened when this
    process can, else replaced by ``describe_sealed``'s text; for display only."""
    if type(value) is list:
        return [reveal(v) for v in value]
    if type(value) is not dict:
        return value
    if is_sealed(value):
        try:
            return reveal(open_payload(value))
        except SerializationError:
            return describe_sealed(value)
    if "sealed" in value and is_sealed(value["sealed"]):
        try:
            return reveal(open_error(value))
        except SerializationError:
            return {k: v for k, v in value.items() if k != "sealed"} | {
                "message": describe_sealed(value["sealed"])
            }
    return {k: reveal(v) for k, v in value.items()}
