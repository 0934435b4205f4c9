"""Authenticated encryption of small secrets at rest (DJs' stream keys).

AES-256-GCM with a fresh random 96-bit nonce per message (NIST SP 800-38D §8.2.2); the
stored blob is `nonce ‖ ciphertext ‖ tag`. The caller passes associated data naming the
row a secret belongs to (its id), so a blob copied into another row fails to open."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16


class SealedDataError(Exception):
    """A blob that was tampered with, truncated, sealed under another key or for another row."""


class SecretBox:
    """Seals and opens UTF-8 strings with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, aad: bytes) -> bytes:
        """Encrypt `plaintext`, binding it to `aad` (e.g. the row id's bytes)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), aad)

    def open(self, blob: bytes, aad: bytes) -> str:
        """The plaintext of a blob `seal` produced with the same `aad`; raises
        `SealedDataError` otherwise."""
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise SealedDataError("sealed data is truncated")
        try:
            plaintext = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise SealedDataError("sealed data does not authenticate") from None
        return plaintext.decode()


class UrlSigner:
    """Short-lived HMAC grants for URLs a client cannot attach headers to (HLS segments
    fetched by Safari's native player): `sign(resource, expires)` → `"<expires>.<mac>"`."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"mediaserver url signer", hashlib.sha256).digest()

    def sign(self, resource: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{resource}:{expires}".encode(), hashlib.sha256)
        return f"{expires}.{mac.hexdigest()[:32]}"

    def verify(self, resource: str, grant: str, now: float) -> bool:
        """Whether `grant` was signed for `resource` and has not expired. Anything else a
        client may send (non-ASCII digits, huge numbers, odd characters) is just False."""
        expires, _, _mac = grant.partition(".")
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return False
        if int(expires) < now:
            return False
        return hmac.compare_digest(self.sign(resource, int(expires)).encode(), grant.encode())
