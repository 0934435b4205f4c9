"""Who is calling: the principal carried by an RS256 access token, and the scopes of a role."""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mediaserver.db import parse_id
from mediaserver.errors import Unauthenticated

Role = Literal["dj", "listener", "admin"]
#: Clock skew tolerated on `exp` and `iat`.
LEEWAY_SECONDS = 5
#: Verified tokens remembered (the least recently used are forgotten first).
VERIFIED_TOKENS = 10_000
EXPIRED = "Access token has expired"

#: The content a listener consumes. `domains:read` and `analytics:read` are about resources
#: only DJs own, so a listener's token lacks them (403 names the scope, not an empty list).
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
    issued_at: float = 0.0
    #: When the token stops being accepted (its `exp` plus the leeway), epoch seconds.
    expires_at: float = math.inf
    #: `role == "admin"`, kept as a field: read on every request that checks access.
    is_admin: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_admin", self.role == "admin")

    def owns(self, owner_id: uuid.UUID) -> bool:
        return self.user_id == owner_id


#: The caller, set by the route table's guard when the request carries a valid token; an
#: anonymous request has none (`request.get(principal_key)` is None): the common listener's
#: media GET then costs no store into the request.
principal_key = web.RequestKey[Principal]("principal")


def to_millis(epoch_seconds: float) -> float:
    """Epoch seconds cut (never rounded up) to whole milliseconds, as `iat`/`exp` carry them."""
    return math.floor(epoch_seconds * 1000) / 1000


def principal_of(request: web.Request) -> Principal:
    """The caller of a route declared with auth="required"."""
    try:
        return request[principal_key]
    except KeyError:
        raise Unauthenticated() from None


class TokenCodec:
    """Issues and verifies RS256 access tokens. Only RS256 is accepted on the way in, so
    `alg: none` and HS256-signed-with-the-public-key forgeries fail verification."""

    algorithm = "RS256"

    def __init__(
        self,
        private_pem: bytes,
        public_pem: bytes,
        issuer: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock  # epoch seconds: when tokens expire
        # Parsed once: loading a PEM costs more than checking a signature with it.
        private = serialization.load_pem_private_key(private_pem, password=None)
        public = serialization.load_pem_public_key(public_pem)
        if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
            raise ValueError(f"{self.algorithm} needs an RSA key pair")
        self._private, self._public = private, public
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        #: Tokens verified already, by their exact text, until they expire: a player
        #: fetching a segment a second pays for one signature check per token.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def issue(self, user_id: uuid.UUID, email: str, role: str, now: float | None = None) -> str:
        # RFC 7519 §2 NumericDate may be fractional: milliseconds let a sign-out cutoff
        # (`control/accounts.py`) tell a token from one issued later in the same second.
        issued = to_millis(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(user_id),
            "email": email,
            "role": role,
            "scopes": list(ROLE_SCOPES[role]),
            "iat": issued,
            "exp": to_millis(issued + self.ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        """The token's principal; 401 when it is malformed, forged, for another issuer or
        expired. A token verified before is answered from memory until it expires."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if expires > self._clock() - LEEWAY_SECONDS:  # `_live`, on every request
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
            raise Unauthenticated(EXPIRED)
        principal, expires = self._decode(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                # `exp` is checked below, by `_live`, as for remembered tokens.
                options={"require": ["exp", "iat", "sub", "jti", "iss"], "verify_exp": False},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError:
            raise Unauthenticated("Invalid access token") from None
        try:
            expires = float(claims["exp"])
            principal = Principal(
                user_id=parse_id(claims["sub"]),
                email=str(claims["email"]),
                role=str(claims["role"]),
                scopes=frozenset(claims["scopes"]),
                token_id=str(claims["jti"]),
                issued_at=float(claims["iat"]),
                expires_at=expires + LEEWAY_SECONDS,
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise Unauthenticated("Invalid access token") from None
        if not self._live(expires):
            raise Unauthenticated(EXPIRED)
        return principal, expires

    def _live(self, expires: float) -> bool:
        """Not expired yet, give or take the leeway (as PyJWT's `exp` check)."""
        return expires > self._clock() - LEEWAY_SECONDS
