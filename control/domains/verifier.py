"""Whether a custom domain is under its owner's control and has a certificate (US-4.8).

`DomainVerifier` is the seam: the staging `StubVerifier` answers from the clock alone
(verified and issued once `delay` has passed since the domain was registered), exactly as
the backlog's stub; a real implementation looks up the TXT record
`_mediaserver-challenge.<hostname>` for the challenge value and drives an ACME client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from control.domains.queries import DomainRow


@dataclass(frozen=True, slots=True)
class Verification:
    verified: bool
    tls_issued: bool


class DomainVerifier(Protocol):
    async def check(self, domain: DomainRow, now: datetime) -> Verification:
        """The domain's state as of `now` (called only while something is still pending)."""
        ...


class StubVerifier:
    """Staging stub: everything is verified and issued `delay` after registration."""

    def __init__(self, delay: timedelta) -> None:
        self._delay = delay

    async def check(self, domain: DomainRow, now: datetime) -> Verification:
        done = now - domain.created_at >= self._delay
        return Verification(verified=done, tls_issued=done)
