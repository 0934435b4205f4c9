"""Validation messages and token verification, without a server."""

from __future__ import annotations

import time
import uuid
from typing import Literal

import jwt
import pytest
from pydantic import BaseModel, Field

from control.api import parse_model
from control.security import ROLE_SCOPES, TokenCodec
from mediaserver.errors import InvalidInput, Unauthenticated


class Sample(BaseModel):
    name: str = Field(min_length=2)
    count: int = Field(ge=0, le=10)
    kind: Literal["public", "private"] = "public"
    tags: list[str] = []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": 1}, "Field 'name' is required."),
        ({"name": "x", "count": 1}, "Field 'name' must be at least 2 characters long."),
        ({"name": "xy", "count": 11}, "Field 'count' must be at most 10."),
        ({"name": "xy", "count": "many"}, "Field 'count' must be an integer."),
        (
            {"name": "xy", "count": 1, "kind": "secret"},
            "Field 'kind' must be 'public' or 'private'.",
        ),
        ({"name": "xy", "count": 1, "tags": [1]}, "Field 'tags[0]' must be a string."),
    ],
)
def test_body_messages_name_the_field(data, message):
    with pytest.raises(InvalidInput) as info:
        parse_model(Sample, data, "body")
    assert info.value.message == message
    assert message in info.value.details


def test_all_errors_are_in_details_and_query_wording():
    with pytest.raises(InvalidInput) as info:
        parse_model(Sample, {}, "query")
    assert info.value.details == [
        "Query parameter 'name' is required.",
        "Query parameter 'count' is required.",
    ]
    with pytest.raises(InvalidInput, match=r"Request body must be a JSON object\."):
        parse_model(Sample, ["not", "an", "object"], "body")


@pytest.fixture(scope="module")
def codec(test_secrets) -> TokenCodec:
    return TokenCodec(test_secrets.jwt_private_pem, test_secrets.jwt_public_pem, "mediaserver", 60)


def test_issued_token_round_trips(codec):
    user_id = uuid.uuid4()
    principal = codec.verify(codec.issue(user_id, "a@example.com", "dj"))
    assert principal.user_id == user_id and principal.role == "dj"
    assert principal.scopes == frozenset(ROLE_SCOPES["dj"])


def test_expired_and_missing_claims(codec, test_secrets):
    old = codec.issue(uuid.uuid4(), "a@example.com", "dj", now=time.time() - 3600)
    with pytest.raises(Unauthenticated, match="expired"):
        codec.verify(old)
    no_jti = jwt.encode(
        {
            "iss": "mediaserver",
            "sub": str(uuid.uuid4()),
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        test_secrets.jwt_private_pem,
        algorithm="RS256",
    )
    with pytest.raises(Unauthenticated, match="Invalid access token"):
        codec.verify(no_jti)


def test_admin_has_every_scope_listener_only_reads():
    assert set(ROLE_SCOPES["admin"]) >= set(ROLE_SCOPES["dj"]) | set(ROLE_SCOPES["listener"])
    assert all(s.endswith(":read") or s == "monetization:write" for s in ROLE_SCOPES["listener"])
