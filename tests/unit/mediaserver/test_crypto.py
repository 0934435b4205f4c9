"""Stream keys at rest: AES-256-GCM blobs that only open for the row they were sealed for."""

from __future__ import annotations

import os
import uuid

import pytest

from mediaserver.crypto import NONCE_BYTES, SealedDataError, SecretBox, UrlSigner

KEY = bytes(range(32))


def test_round_trip_of_any_unicode_key():
    box = SecretBox(KEY)
    aad = uuid.uuid4().bytes
    for secret in ("hackme", "pässwörd – ☃", "x" * 256, ""):
        assert box.open(box.seal(secret, aad), aad) == secret


def test_each_seal_uses_a_fresh_nonce_and_hides_the_plaintext():
    box = SecretBox(KEY)
    aad = uuid.uuid4().bytes
    first, second = box.seal("DJ_STREAM_KEY", aad), box.seal("DJ_STREAM_KEY", aad)
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES] and first != second
    assert b"DJ_STREAM_KEY" not in first
    assert len(first) == NONCE_BYTES + len("DJ_STREAM_KEY") + 16


def test_a_blob_moved_to_another_row_does_not_open():
    box = SecretBox(KEY)
    blob = box.seal("DJ_STREAM_KEY", uuid.uuid4().bytes)
    with pytest.raises(SealedDataError):
        box.open(blob, uuid.uuid4().bytes)


@pytest.mark.parametrize("position", [0, NONCE_BYTES, -1])
def test_a_tampered_blob_does_not_open(position):
    box = SecretBox(KEY)
    aad = b"row"
    blob = bytearray(box.seal("DJ_STREAM_KEY", aad))
    blob[position] ^= 0x01
    with pytest.raises(SealedDataError):
        box.open(bytes(blob), aad)


def test_truncated_blob_or_another_key_does_not_open():
    aad = b"row"
    blob = SecretBox(KEY).seal("DJ_STREAM_KEY", aad)
    with pytest.raises(SealedDataError):
        SecretBox(KEY).open(blob[:20], aad)
    with pytest.raises(SealedDataError):
        SecretBox(os.urandom(32)).open(blob, aad)


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_only_256_bit_keys_are_accepted(size):
    with pytest.raises(ValueError, match="32-byte key"):
        SecretBox(bytes(size))


def test_repr_does_not_show_the_key():
    assert KEY.hex() not in repr(SecretBox(KEY)) and "hidden" in repr(SecretBox(KEY))


def test_url_grants_verify_for_their_resource_until_they_expire():
    signer = UrlSigner(KEY)
    grant = signer.sign("stream-1", 2_000_000_000)
    assert signer.verify("stream-1", grant, now=1_999_999_999)
    assert not signer.verify("stream-2", grant, now=1_999_999_999)
    assert not signer.verify("stream-1", grant, now=2_000_000_001)
    assert not UrlSigner(bytes(32)).verify("stream-1", grant, now=1_999_999_999)


@pytest.mark.parametrize(
    "grant",
    [
        "",
        ".",
        "abc.def",
        "\u00b2\u00b2\u00b2.0",  # superscript digits: isdigit() but not int()
        "\u0663\u0663.0",  # Arabic-Indic digits
        "9" * 5000 + ".0",  # past int()'s digit limit
        "2000000000.\u00e9\u00e9\u00e9",  # a non-ASCII MAC
        "2000000000." + "0" * 32 + "\x00",
    ],
)
def test_hostile_grants_are_refused_not_errors(grant):
    assert UrlSigner(KEY).verify("stream-1", grant, now=0) is False
