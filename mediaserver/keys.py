"""Secrets of a node: the RS256 key pair, the stream-key encryption key and the relay
service token. Given ones come from settings; missing ones are generated once into
`$MEDIASERVER_DATA_DIR/keys/` (mode 0600) and read back on later starts."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mediaserver.config import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class Secrets:
    jwt_private_pem: bytes
    jwt_public_pem: bytes
    stream_key_secret: bytes  # 32 bytes, AES-256-GCM
    relay_service_token: str


def load_secrets(settings: Settings) -> Secrets:
    """Read or create every secret; raises `SettingsError` on unreadable or bad material."""
    key_dir = settings.data_dir / "keys"
    private_pem, public_pem = _key_pair(settings, key_dir)
    if settings.stream_key_secret is not None:
        stream_secret = _decode_aes_key(settings.stream_key_secret.get_secret_value())
    else:
        stream_secret = _decode_aes_key(
            _read_or_create(key_dir / "stream_key_secret", lambda: _b64(secrets.token_bytes(32)))
        )
    if settings.relay_service_token is not None:
        token = settings.relay_service_token.get_secret_value()
    else:
        token = _read_or_create(key_dir / "relay_service_token", lambda: secrets.token_urlsafe(32))
    return Secrets(private_pem, public_pem, stream_secret, token)


def _key_pair(settings: Settings, key_dir: Path) -> tuple[bytes, bytes]:
    given = (settings.jwt_private_key_path, settings.jwt_public_key_path)
    if any(given) and not all(given):
        raise SettingsError(
            "invalid setting JWT_PRIVATE_KEY_PATH/JWT_PUBLIC_KEY_PATH: set both or neither"
        )
    if settings.jwt_private_key_path and settings.jwt_public_key_path:
        private_pem = _read(settings.jwt_private_key_path, "JWT_PRIVATE_KEY_PATH")
        public_pem = _read(settings.jwt_public_key_path, "JWT_PUBLIC_KEY_PATH")
    else:
        private_pem = _read_or_create(key_dir / "jwt_private.pem", _new_private_key).encode()
        public_pem = (
            serialization.load_pem_private_key(private_pem, password=None)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
        serialization.load_pem_public_key(public_pem)
    except ValueError as exc:
        raise SettingsError(
            f"invalid setting JWT_PRIVATE_KEY_PATH: not a PEM key ({exc})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SettingsError("invalid setting JWT_PRIVATE_KEY_PATH: RS256 needs an RSA key")
    return private_pem, public_pem


def _new_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"invalid setting {variable}: cannot read {path} ({exc.strerror})"
        ) from None


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """Create `path` exclusively (so concurrent first starts agree on one value), else read it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise SettingsError(
            f"invalid setting MEDIASERVER_DATA_DIR: cannot write {path} ({exc.strerror})"
        ) from None
    value = make().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _decode_aes_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SettingsError(
            "invalid setting STREAM_KEY_SECRET: must be 32 bytes, base64 (urlsafe) encoded"
        )
    return raw
