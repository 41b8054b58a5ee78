"""Payload envelopes at rest (``encr``/``gzip``): round trips, keys and their ids,
tampering, decompression bombs, configuration errors. End to end: tests/e2e/test_encryption.py."""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from wfkit.runtime.api.streams import decode_chunk, encode_chunk
from wfkit.runtime.errors import PayloadDecryptionError, SerializationError
from wfkit.runtime.serialization import (
    deserialize,
    deserialize_call,
    deserialize_error,
    serialize,
    serialize_call,
    serialize_error,
)
from wfkit.runtime.serialization.at_rest import (
    open_bytes,
    open_error,
    open_payload,
    reveal,
    seal,
    seal_bytes,
    seal_error,
)
from wfkit.runtime.serialization.keys import (
    configure_payloads,
    current_settings,
    key_id_for,
    reset_payload_settings,
)

RAW_A = b"A" * 32
KEY_A = "ka:" + base64.b64encode(RAW_A).decode()
KEY_B = "kb:" + base64.b64encode(b"B" * 32).decode()
VALUE = {"card": "4111-1111-1111-1111", "items": [1, 2.5, None, "x\x00y"], "n": 2**70}


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("WFKIT_ENCRYPTION_KEY", "WFKIT_DECRYPTION_KEYS", "WFKIT_COMPRESS_OVER"):
        monkeypatch.delenv(name, raising=False)
    reset_payload_settings()
    yield
    reset_payload_settings()


def test_unconfigured_payloads_are_stored_as_they_are() -> None:
    data = serialize(VALUE)
    assert seal(data) is data
    assert seal_bytes(b"jabc") == b"jabc"
    info = serialize_error(ValueError("boom"))
    assert seal_error(info) is info


def test_an_encrypted_payload_round_trips_and_hides_its_text() -> None:
    configure_payloads(KEY_A)
    stored = seal(serialize(VALUE))
    assert stored["$t"] == "encr" and stored["kid"] == "ka"
    assert "4111" not in json.dumps(stored)
    assert deserialize(stored) == VALUE
    twice = seal(serialize(VALUE))
    assert twice["v"] != stored["v"]  # a fresh nonce per payload


def test_call_inputs_and_errors_open_through_their_readers() -> None:
    configure_payloads(KEY_A)
    call = seal(serialize_call((1, "secret"), {"k": b"v"}))
    assert deserialize_call(call) == ((1, "secret"), {"k": b"v"}, None, None)
    info = seal_error(serialize_error(KeyError("secret-key")))
    assert info["type"] == "KeyError" and info["message"] == "[encrypted]"
    assert "secret-key" not in json.dumps(info)
    error = deserialize_error(info)
    assert isinstance(error, KeyError) and error.args == ("secret-key",)
    assert open_error(info)["message"] == "'secret-key'"


def test_a_missing_key_names_the_key_id_in_one_line() -> None:
    configure_payloads(KEY_A)
    stored = seal(serialize(VALUE))
    configure_payloads()
    with pytest.raises(PayloadDecryptionError) as caught:
        deserialize(stored)
    assert caught.value.key_id == "ka"
    assert "key id 'ka'" in str(caught.value) and "\n" not in str(caught.value)


def test_a_wrong_key_under_the_same_id_or_altered_bytes_fail_authentication() -> None:
    configure_payloads(KEY_A)
    stored = seal(serialize(VALUE))
    configure_payloads("ka:" + base64.b64encode(b"Z" * 32).decode())
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        open_payload(stored)
    configure_payloads(KEY_A)
    blob = bytearray(base64.b64decode(stored["v"]))
    blob[20] ^= 1
    tampered = {**stored, "v": base64.b64encode(bytes(blob)).decode()}
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        open_payload(tampered)
    relabelled = {**stored, "kid": "kb"}  # the key id is authenticated too
    configure_payloads(KEY_A, decryption_keys=["kb:" + KEY_A.split(":")[1]])
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        open_payload(relabelled)


def test_rotation_encrypts_with_the_new_key_and_opens_with_both() -> None:
    configure_payloads(KEY_A)
    old = seal(serialize("old"))
    configure_payloads(KEY_B, decryption_keys=[KEY_A])
    new = seal(serialize("new"))
    assert (old["kid"], new["kid"]) == ("ka", "kb")
    assert (deserialize(old), deserialize(new)) == ("old", "new")


def test_a_key_provider_is_asked_for_unknown_ids() -> None:
    configure_payloads(KEY_A)
    stored = seal(serialize("x"))
    asked: list[str] = []

    def provider(key_id: str) -> bytes | None:
        asked.append(key_id)
        return RAW_A if key_id == "ka" else None

    configure_payloads(key_provider=provider)
    assert deserialize(stored) == "x" and asked == ["ka"]


def test_compression_applies_over_the_threshold_only_and_composes_with_encryption() -> None:
    configure_payloads(compress_over=100)
    small = serialize("s" * 50)
    assert seal(small) == small
    big = serialize("b" * 10_000)
    packed = seal(big)
    assert packed["$t"] == "gzip" and len(packed["v"]) < 200
    assert deserialize(packed) == "b" * 10_000
    configure_payloads(KEY_A, compress_over=100)
    both = seal(big)
    assert both["$t"] == "encr" and len(both["v"]) < 200
    assert deserialize(both) == "b" * 10_000


def test_incompressible_data_is_not_stored_larger() -> None:
    configure_payloads(compress_over=10)
    noise = serialize(base64.b64encode(os.urandom(3000)).decode())
    assert seal(noise) is noise


def test_a_decompression_bomb_is_refused() -> None:
    configure_payloads(max_inflated=1_000_000)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(b"[" + b" " * 50_000_000 + b"]") + packer.flush()
    assert len(bomb) < 100_000
    envelope = {"$t": "gzip", "v": base64.b64encode(bomb).decode()}
    with pytest.raises(SerializationError, match="expands beyond 1000000 bytes"):
        deserialize(envelope)
    with pytest.raises(SerializationError, match="expands beyond"):
        open_bytes(b"gzip" + bomb)


def test_malformed_envelopes_are_clear_errors() -> None:
    configure_payloads(KEY_A)
    for bad in (
        {"$t": "gzip", "v": "%%%"},
        {"$t": "gzip", "v": base64.b64encode(b"not gzip").decode()},
        {"$t": "encr", "v": base64.b64encode(b"x" * 40).decode()},
        {"$t": "encr", "kid": "ka", "v": base64.b64encode(b"short").decode()},
    ):
        with pytest.raises(SerializationError):
            deserialize(bad)


def test_a_user_dict_shaped_like_an_envelope_stays_data() -> None:
    configure_payloads(KEY_A)
    value = {"$t": "encr", "kid": "ka", "v": "AAAA"}
    assert deserialize(seal(serialize(value))) == value
    configure_payloads()
    assert deserialize(serialize(value)) == value


def test_stream_chunks_are_sealed_and_open_again() -> None:
    configure_payloads(KEY_A, compress_over=10)
    for chunk in (b"raw secret bytes" * 10, {"chunk": "secret" * 10}):
        stored = encode_chunk(chunk)
        assert stored[:4] == b"encr" and b"secret" not in stored
        assert decode_chunk(stored) == chunk
    configure_payloads()
    with pytest.raises(PayloadDecryptionError, match="key id 'ka'"):
        decode_chunk(stored)


def test_reveal_shows_encrypted_unless_the_key_is_here() -> None:
    configure_payloads(KEY_A)
    record: dict[str, Any] = {
        "input": seal(serialize_call(("secret",), {})),
        "error": seal_error(serialize_error(ValueError("secret"))),
    }
    assert reveal(record)["input"]["args"] == ["secret"]
    assert reveal(record)["error"]["message"] == "secret"
    configure_payloads()
    shown = reveal(record)
    assert shown["input"] == "[encrypted with key ka]"
    assert shown["error"]["message"] == "[encrypted with key ka]"
    assert "secret" not in json.dumps(shown)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WFKIT_ENCRYPTION_KEY": "not base64!"}, "WFKIT_ENCRYPTION_KEY: not base64"),
        (
            {"WFKIT_ENCRYPTION_KEY": base64.b64encode(b"x" * 16).decode()},
            "is 16 bytes, expected 32",
        ),
        ({"WFKIT_DECRYPTION_KEYS": KEY_A + ",:abc"}, "WFKIT_DECRYPTION_KEYS entry 2: the key id"),
        ({"WFKIT_COMPRESS_OVER": "lots"}, "WFKIT_COMPRESS_OVER: expected a number of bytes"),
        ({"WFKIT_ENCRYPTION_KEY": "x" * 65 + ":" + KEY_A[3:]}, "at most 64 printable"),
    ],
)
def test_bad_environment_settings_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message) as caught:
        current_settings()
    assert "\n" not in str(caught.value)
    assert "x" * 16 not in str(caught.value)


def test_the_environment_configures_keys_and_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WFKIT_ENCRYPTION_KEY", base64.b64encode(b"C" * 32).decode())
    monkeypatch.setenv("WFKIT_DECRYPTION_KEYS", f" {KEY_A} , {KEY_B} ")
    monkeypatch.setenv("WFKIT_COMPRESS_OVER", "4096")
    settings = current_settings()
    assert settings.encrypt_with == (key_id_for(b"C" * 32), b"C" * 32)
    assert set(settings.keys) == {"ka", "kb", key_id_for(b"C" * 32)}
    assert settings.compress_over == 4096
    assert seal(serialize("x"))["kid"] == key_id_for(b"C" * 32)
