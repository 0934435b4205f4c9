"""Password hashing with argon2id, always off the event loop (it costs tens of ms)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError


class PasswordHasher:
    """`fast=True` lowers the cost for test suites; never for production."""

    def __init__(self, fast: bool = False) -> None:
        self._argon2 = _Argon2(time_cost=1, memory_cost=1024, parallelism=1) if fast else _Argon2()
        # Verified when the email is unknown, so a miss costs as much as a wrong password.
        self._dummy = self._argon2.hash("not-a-real-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash or self._dummy, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
