"""Access tokens verified once are answered from memory — until they expire, and only for
the exact token text (a tampered or forged token is checked, and refused, every time)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from control.security import LEEWAY_SECONDS, TokenCodec
from mediaserver.errors import Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(test_secrets, clock) -> TokenCodec:
    pems = test_secrets.jwt_private_pem, test_secrets.jwt_public_pem
    return TokenCodec(*pems, "mediaserver", 60, clock=clock)


def test_a_remembered_token_expires_on_time(codec, clock):
    token = codec.issue(uuid.uuid4(), "a@example.com", "dj", now=clock.now)
    first = codec.verify(token)
    assert codec.verify(token) is first  # from memory
    clock.now += 60 + LEEWAY_SECONDS - 1
    assert codec.verify(token) is first  # within the leeway
    clock.now += 2
    with pytest.raises(Unauthenticated, match="Access token has expired"):
        codec.verify(token)
    with pytest.raises(Unauthenticated, match="Access token has expired"):
        codec.verify(token)  # and it stays expired, remembered or not


def test_only_the_exact_token_is_remembered(codec, clock, test_secrets):
    token = codec.issue(uuid.uuid4(), "a@example.com", "listener", now=clock.now)
    codec.verify(token)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(Unauthenticated, match="Invalid access token"):
        codec.verify(tampered)
    claims = jwt.decode(token, options={"verify_signature": False})
    forger = "a key of the forger's, 32 bytes or more"
    promoted = jwt.encode({**claims, "role": "admin"}, forger, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="Invalid access token"):
        codec.verify(promoted)
    assert codec.verify(token).role == "listener"


def test_a_token_expired_when_first_seen_is_refused(codec, clock):
    old = codec.issue(uuid.uuid4(), "a@example.com", "dj", now=clock.now - 60 - LEEWAY_SECONDS)
    with pytest.raises(Unauthenticated, match="Access token has expired"):
        codec.verify(old)
