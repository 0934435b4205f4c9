"""Who is calling: the principal carried by an RS256 access token, and the scopes of a role."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from aiohttp import web

from mediaserver.errors import Unauthenticated

Role = Literal["dj", "listener", "admin"]

READ_SCOPES = ("streams:read", "playlists:read", "podcasts:read")
#: Backlog US-8.3. A DJ reads and writes its own resources; a listener reads and subscribes.
#: Uploaded audio (`/v1/uploads/audio*`) is playlist material: `playlists:write` uploads and
#: deletes it, `playlists:read` reads and plays it.
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "dj": (
        "streams:read",
        "streams:write",
        "playlists:read",
        "playlists:write",
        "podcasts:read",
        "podcasts:write",
        "domains:read",
        "domains:write",
        "monetization:write",
        "analytics:read",
    ),
    "listener": (*READ_SCOPES, "monetization:write"),
}
ROLE_SCOPES["admin"] = ROLE_SCOPES["dj"]
ALL_SCOPES = tuple(sorted(set(ROLE_SCOPES["dj"])))


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as stated by a verified access token."""

    user_id: uuid.UUID
    email: str
    role: str
    scopes: frozenset[str]
    token_id: str
    #: `iat` of the token, epoch seconds (0 for principals not made from a token).
    issued_at: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def owns(self, owner_id: uuid.UUID) -> bool:
        return self.user_id == owner_id


principal_key = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The caller of a route declared with auth="required"."""
    principal = request.get(principal_key)
    if principal is None:
        raise Unauthenticated()
    return principal


class TokenCodec:
    """Issues and verifies RS256 access tokens. Only RS256 is accepted on the way in, so
    `alg: none` and HS256-signed-with-the-public-key forgeries fail verification."""

    algorithm = "RS256"

    def __init__(
        self, private_pem: bytes, public_pem: bytes, issuer: str, ttl_seconds: int
    ) -> None:
        self._private = private_pem
        self._public = public_pem
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: uuid.UUID, email: str, role: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(user_id),
            "email": email,
            "role": role,
            "scopes": list(ROLE_SCOPES[role]),
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("Invalid access token") from None
        try:
            return Principal(
                user_id=uuid.UUID(claims["sub"]),
                email=str(claims["email"]),
                role=str(claims["role"]),
                scopes=frozenset(claims["scopes"]),
                token_id=str(claims["jti"]),
                issued_at=int(claims["iat"]),
            )
        except (KeyError, TypeError, ValueError):
            raise Unauthenticated("Invalid access token") from None
