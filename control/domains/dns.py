"""`DOMAIN_VERIFIER=dns`: a custom domain is verified once its owner has published the
challenge, a TXT record `_mediaserver-challenge.<hostname>` whose value is the domain's
`dns_challenge_record` (the registration response says both).

The lookup goes to `DNS_RESOLVER` (host:port) when set, else to the system's resolvers,
through dnspython's asyncio resolver. A missing name or record, a wrong value, or a
resolver that does not answer all leave the domain pending; it is looked up again the next
time the domain is read or attached.

The node issues no certificates: TLS for custom domains is terminated in front of it (an
ingress with cert-manager, a CDN), so `tls_status` follows the verification here.
"""

from __future__ import annotations

import logging
from datetime import datetime

import dns.asyncresolver
import dns.exception
import dns.resolver

from control.domains.queries import DomainRow
from control.domains.service import CHALLENGE_PREFIX
from control.domains.verifier import Verification

log = logging.getLogger(__name__)

#: Time allowed for one lookup (retries against the resolver included).
LOOKUP_SECONDS = 5.0


class DnsVerifier:
    """The `DomainVerifier` that looks the challenge up in DNS."""

    def __init__(self, resolver: tuple[str, int] | None = None) -> None:
        if resolver is None:
            self._resolver = dns.asyncresolver.Resolver()
        else:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [resolver[0]]
            self._resolver.port = resolver[1]
        self._resolver.lifetime = LOOKUP_SECONDS

    async def check(self, domain: DomainRow, now: datetime) -> Verification:
        found = domain.dns_challenge_record in await self.txt_values(
            CHALLENGE_PREFIX + domain.hostname
        )
        return Verification(verified=found, tls_issued=found)

    async def txt_values(self, name: str) -> set[str]:
        """The TXT values at `name` (each record's strings joined, RFC 7208 §3.3 style);
        empty when there are none or the resolver does not answer."""
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return set()
        except dns.exception.DNSException as exc:
            log.warning("TXT lookup of %s failed: %s", name, type(exc).__name__)
            return set()
        return {b"".join(record.strings).decode("utf-8", "replace") for record in answer}
