"""How payloads are stored at rest in this process: the encryption keys and the
compression threshold (``at_rest.py`` applies them).

One setting per process, like the world (``world_config``): every event payload and
stream chunk this process writes is sealed with it, and every one it reads is opened
with it, whichever world they go to. ``configure_payloads`` sets it; until then it is
read once from the environment:

``WFKIT_ENCRYPTION_KEY``
    ``[ID:]BASE64`` of a 32-byte key: payloads written from now on are encrypted
    with it (AES-256-GCM) and carry ``ID``. Without ``ID`` the key id is
    ``k`` + the first 8 hex digits of the key's SHA-256 (a fingerprint, not the key).
``WFKIT_DECRYPTION_KEYS``
    comma-separated ``[ID:]BASE64`` keys that open older payloads but encrypt nothing:
    the keys a rotation retired.
``WFKIT_COMPRESS_OVER``
    compress (gzip) payloads whose JSON is larger than this many bytes.

Rotation: make the new key ``WFKIT_ENCRYPTION_KEY`` and move the old one to
``WFKIT_DECRYPTION_KEYS`` on every process; new payloads use the new key id, old ones
still open with theirs. Drop an old key once no run that needs it is kept.

Alternatives rejected: a key per world (the DevKit's ``getEncryptionKeyForRun``):
payloads are sealed in ``serialize``'s callers, which a client, a step and the
inspector reach without a world in hand; one key per run derived from a master key
buys nothing here, since every worker holds the master key anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "KEY_BYTES",
    "KeyProvider",
    "PayloadSettings",
    "configure_payloads",
    "current_settings",
    "key_id_for",
    "parse_key_spec",
]

KEY_BYTES = 32
"""AES-256: keys are exactly 32 bytes."""

MAX_KEY_ID = 64
"""Key ids are stored with every payload (and in one length byte in stream chunks)."""

DEFAULT_MAX_INFLATED = 256 * 1024 * 1024
"""The most a compressed payload may expand to when read (a bigger one is refused as
a decompression bomb); payloads larger than this are stored uncompressed."""

KeyProvider = Callable[[str], bytes | None]
"""Given a key id, the 32-byte key, or None when it does not know that id."""


@dataclass(frozen=True)
class PayloadSettings:
    """What ``seal``/``open_payload`` use. Build it with ``configure_payloads``."""

    encrypt_with: tuple[str, bytes] | None = None
    """``(key id, key)`` new payloads are encrypted with; None: written plain."""
    keys: Mapping[str, bytes] = field(default_factory=dict)
    """Key id → key, for opening (includes the current key)."""
    provider: KeyProvider | None = None
    """Asked for key ids not in ``keys``."""
    compress_over: int | None = None
    """Compress payloads whose JSON exceeds this many bytes; None: never."""
    max_inflated: int = DEFAULT_MAX_INFLATED

    def key_for(self, key_id: str) -> bytes | None:
        """The key stored payloads with ``key_id`` open with, or None."""
        key = self.keys.get(key_id)
        if key is None and self.provider is not None:
            key = self.provider(key_id)
            if key is not None:
                _check_key(key, key_id)
        return key

    @property
    def has_keys(self) -> bool:
        return bool(self.keys) or self.provider is not None


def key_id_for(key: bytes) -> str:
    """The default id of a key: ``k`` + 8 hex digits of its SHA-256."""
    return "k" + hashlib.sha256(key).hexdigest()[:8]


def _check_key(key: bytes, key_id: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"encryption key {key_id!r} must be {KEY_BYTES} bytes, got {size}")


def parse_key_spec(spec: str | bytes, *, source: str = "key") -> tuple[str, bytes]:
    """Read ``[ID:]BASE64`` (or raw 32 bytes) into ``(key id, key)``.

    Raises:
        ValueError: not base64 of exactly 32 bytes, or an empty id (one line, naming
            ``source`` and never echoing the key).
    """
    if isinstance(spec, bytes):
        _check_key(spec, source)
        return key_id_for(spec), spec
    text = spec.strip()
    key_id, sep, encoded = text.rpartition(":")
    if sep and not key_id:
        raise ValueError(f"{source}: the key id before ':' is empty")
    if len(key_id) > MAX_KEY_ID or not key_id.isprintable() or "," in key_id:
        raise ValueError(
            f"{source}: a key id is at most {MAX_KEY_ID} printable characters, without ','"
        )
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"{source}: not base64 (expected [ID:]BASE64 of {KEY_BYTES} bytes)"
        ) from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{source}: the key is {len(key)} bytes, expected {KEY_BYTES}")
    return (key_id or key_id_for(key)), key


def configure_payloads(
    encryption_key: str | bytes | None = None,
    *,
    decryption_keys: Iterable[str | bytes] = (),
    key_provider: KeyProvider | None = None,
    compress_over: int | None = None,
    max_inflated: int = DEFAULT_MAX_INFLATED,
) -> PayloadSettings:
    """Choose how this process stores payloads at rest (replacing the environment's choice).

    Args:
        encryption_key: the current key, ``[ID:]BASE64`` or 32 raw bytes (id: its
            fingerprint): every payload written from now on is encrypted with it.
            None: payloads are written plain (stored encrypted ones still open with
            the keys below).
        decryption_keys: retired keys, same forms: they open payloads, never seal.
        key_provider: called with a key id none of the keys above has (a KMS or a
            vault lookup); returns the 32-byte key or None.
        compress_over: gzip payloads whose JSON is larger than this many bytes
            (before encrypting them); None: never.
        max_inflated: the most a compressed payload may expand to when read.

    Returns:
        The settings now in use.

    Raises:
        ValueError: a key that is not 32 bytes (or not base64), a negative threshold.
        ImportError: a key was given and the ``cryptography`` package is missing.
    """
    keys: dict[str, bytes] = {}
    for index, spec in enumerate(decryption_keys):
        key_id, key = parse_key_spec(spec, source=f"decryption key {index + 1}")
        keys[key_id] = key
    current: tuple[str, bytes] | None = None
    if encryption_key is not None:
        current = parse_key_spec(encryption_key, source="encryption key")
        keys[current[0]] = current[1]
    if compress_over is not None and compress_over < 0:
        raise ValueError(f"compress_over must be >= 0 bytes, got {compress_over}")
    if max_inflated <= 0:
        raise ValueError(f"max_inflated must be > 0 bytes, got {max_inflated}")
    settings = PayloadSettings(
        encrypt_with=current,
        keys=keys,
        provider=key_provider,
        compress_over=compress_over,
        max_inflated=max_inflated,
    )
    if settings.has_keys:
        require_cryptography()
    _set(settings)
    return settings


def require_cryptography() -> None:
    """Raises ImportError (one line, naming the pip command) without ``cryptography``."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        raise ImportError(
            "encrypted payloads need the cryptography package: pip install 'wfkit[encryption]'",
            name="cryptography",
        ) from None


_lock = threading.Lock()
_settings: PayloadSettings | None = None


def _set(settings: PayloadSettings | None) -> None:
    global _settings
    with _lock:
        _settings = settings


def reset_payload_settings() -> None:
    """Forget the configured settings: the next use reads the environment again (tests)."""
    _set(None)


def current_settings() -> PayloadSettings:
    """The settings in use: those ``configure_payloads`` chose, else the environment's.

    Raises:
        ValueError: a ``WFKIT_*`` variable above is malformed (one line naming it).
    """
    global _settings
    settings = _settings
    if settings is not None:
        return settings
    with _lock:
        if _settings is None:
            _settings = _from_environment()
        return _settings


def _from_environment() -> PayloadSettings:
    current_spec = os.environ.get("WFKIT_ENCRYPTION_KEY", "").strip()
    old_specs = [s for s in os.environ.get("WFKIT_DECRYPTION_KEYS", "").split(",") if s.strip()]
    threshold_text = os.environ.get("WFKIT_COMPRESS_OVER", "").strip()
    keys: dict[str, bytes] = {}
    for index, spec in enumerate(old_specs):
        key_id, key = parse_key_spec(spec, source=f"WFKIT_DECRYPTION_KEYS entry {index + 1}")
        keys[key_id] = key
    current = None
    if current_spec:
        current = parse_key_spec(current_spec, source="WFKIT_ENCRYPTION_KEY")
        keys[current[0]] = current[1]
    compress_over: int | None = None
    if threshold_text:
        try:
            compress_over = int(threshold_text)
        except ValueError:
            raise ValueError(
                f"WFKIT_COMPRESS_OVER: expected a number of bytes, got {threshold_text!r}"
            ) from None
        if compress_over < 0:
            raise ValueError(f"WFKIT_COMPRESS_OVER: must be >= 0, got {compress_over}")
    settings = PayloadSettings(encrypt_with=current, keys=keys, compress_over=compress_over)
    if settings.has_keys:
        require_cryptography()
    return settings
