"""Custom domains for podcast feeds (backlog US-4.7, US-4.8).

A DJ registers a host name and gets a DNS challenge; the `DomainVerifier` decides when it
is verified and has a certificate (checked whenever the domain is read or attached, and
the answer stored). A verified domain is attached to one podcast by setting the podcast's
`custom_domain` (`PATCH /v1/podcasts/{id}`); `domains.podcast_id` mirrors that in the same
transaction. Requests whose `Host` is an attached, verified domain are then served that
podcast's feed and episode media (`HostMap`, `control.podcasts.media_routes`)."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web

from control.domains import queries
from control.domains.hostmap import HostMap, LocalHostVersions, RedisHostVersions, host_of
from control.domains.queries import DomainRow
from control.domains.schemas import NO_DOMAINS, DnsRecord, DomainIn, DomainList, DomainOut
from control.domains.verifier import DomainVerifier
from control.schemas import PageQuery
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.db import Executor
from mediaserver.errors import Conflict, Forbidden, NotFound, Unprocessable

if TYPE_CHECKING:
    import redis.asyncio

CHALLENGE_PREFIX = "_mediaserver-challenge."
#: Backlog US-4.7 ("acme-challenge=STAGING123"), with a random token per domain.
CHALLENGE_VALUE_PREFIX = "acme-challenge="
NOT_HOSTED = "No podcast is served at this host"


class DomainsService:
    """Domains in PostgreSQL, verification behind `verifier`, `hosts` for request routing."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        verifier: DomainVerifier,
        settings: Settings,
        clock: Clock = utcnow,
        redis: redis.asyncio.Redis | None = None,
    ) -> None:
        self._pool = pool
        self._verifier = verifier
        self._clock = clock
        # The API's own host must never be taken over by a "custom" domain.
        self._reserved = {urlsplit(settings.base_url).hostname or "", "localhost"}
        versions = RedisHostVersions(redis) if redis is not None else LocalHostVersions()
        self.hosts = HostMap(self._served_podcast, versions)

    async def register(self, principal: Principal, body: DomainIn) -> DomainOut:
        """Store the domain as pending with a fresh challenge; 409 when it is taken."""
        hostname = body.custom_domain
        if hostname in self._reserved:
            raise Conflict(f"{hostname} is this server's own host name")
        token = f"{CHALLENGE_VALUE_PREFIX}{secrets.token_hex(16)}"
        try:
            row = await queries.insert(
                self._pool, principal.user_id, hostname, token, self._clock()
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"Domain {hostname} is already registered") from None
        return self._out(row)

    async def get(self, principal: Principal, domain_id: uuid.UUID) -> DomainOut:
        """The domain with its statuses as of now (the verifier runs while pending)."""
        row = await self._owned(principal, domain_id)
        return self._out(await self._refresh(self._pool, row))

    async def list(self, principal: Principal, page: PageQuery) -> DomainList:
        """The caller's domains, newest first."""
        rows, total = await queries.owned(self._pool, principal.user_id, page.per_page, page.offset)
        domains = [self._out(await self._refresh(self._pool, r)) for r in rows]
        return DomainList(
            domains=domains,
            page=page.page,
            per_page=page.per_page,
            total=total,
            message=NO_DOMAINS if total == 0 else None,
        )

    async def delete(self, principal: Principal, domain_id: uuid.UUID) -> None:
        """Soft delete; 409 while a podcast is served at the domain."""
        row = await self._owned(principal, domain_id)
        if row.podcast_id is not None:
            raise Conflict(
                f"Domain {row.hostname} is attached to podcast {row.podcast_id}: detach it "
                'first with PATCH /v1/podcasts/{podcast_id} {"custom_domain": null}'
            )
        if not await queries.delete(self._pool, domain_id, self._clock()):
            raise _not_found()
        await self.hosts.invalidate(row.hostname)

    async def attach(
        self, conn: Executor, owner_id: uuid.UUID, hostname: str, podcast_id: uuid.UUID
    ) -> None:
        """In the caller's transaction: serve `podcast_id` at `hostname`, a verified
        domain of `owner_id`'s (422 otherwise) not serving another podcast (409)."""
        row = await queries.by_hostname(conn, hostname, lock=True)
        if row is not None and row.owner_id != owner_id:
            raise Conflict(f"Custom domain {hostname} is already in use")
        if row is None:
            raise Unprocessable(
                f"Custom domain {hostname} is not registered: register it with "
                "POST /v1/domains and wait for it to be verified"
            )
        row = await self._refresh(conn, row)
        if row.status != "verified":
            raise Unprocessable(f"Custom domain {hostname} is not verified yet")
        if row.podcast_id not in (None, podcast_id):
            raise Conflict(f"Custom domain {hostname} is already in use by another podcast")
        await queries.set_podcast(conn, hostname, podcast_id)

    async def detach(self, conn: Executor, hostname: str) -> None:
        """In the caller's transaction: the domain no longer serves a podcast."""
        await queries.set_podcast(conn, hostname, None)

    async def served_podcast(self, host_header: str | None) -> uuid.UUID:
        """The podcast served at a request's `Host`; 404 unless that is a verified domain
        attached to a live podcast."""
        host = host_of(host_header)
        podcast_id = await self.hosts.podcast_for(host) if host is not None else None
        if podcast_id is None:
            raise NotFound(NOT_HOSTED)
        return podcast_id

    async def _served_podcast(self, hostname: str) -> uuid.UUID | None:
        return await queries.served_podcast(self._pool, hostname)

    async def _refresh(self, conn: Executor, row: DomainRow) -> DomainRow:
        if row.status == "verified" and row.tls_status == "issued":
            return row
        now = self._clock()
        found = await self._verifier.check(row, now)
        status = "verified" if found.verified or row.status == "verified" else "pending"
        tls = "issued" if found.tls_issued or row.tls_status == "issued" else "pending"
        if (status, tls) == (row.status, row.tls_status):
            return row
        updated = await queries.set_status(conn, row.domain_id, status, tls, now)
        if status == "verified":
            await self.hosts.invalidate(row.hostname)
        return updated or row

    async def _owned(self, principal: Principal, domain_id: uuid.UUID) -> DomainRow:
        row = await queries.by_id(self._pool, domain_id)
        if row is None:
            raise _not_found()
        if not principal.is_admin and not principal.owns(row.owner_id):
            raise Forbidden("Only the domain's owner or an admin can do this")
        return row

    def _out(self, row: DomainRow) -> DomainOut:
        record = DnsRecord(name=CHALLENGE_PREFIX + row.hostname, value=row.dns_challenge_record)
        return DomainOut(
            domain_id=row.domain_id,
            custom_domain=row.hostname,
            verification_status=row.status,
            tls_status=row.tls_status,
            dns_challenge_record=record.value,
            dns_record=record,
            instructions=_instructions(row.hostname, record),
            podcast_id=row.podcast_id,
            created_at=row.created_at,
            verified_at=row.verified_at,
            last_checked=self._clock(),
        )


def _instructions(hostname: str, record: DnsRecord) -> str:
    return (
        f"Add a TXT record named {record.name} with the value {record.value} to your DNS "
        f"and point {hostname} at this server (CNAME). Verification and the TLS certificate "
        "follow automatically; then attach the domain to a podcast with "
        'PATCH /v1/podcasts/{podcast_id} {"custom_domain": "' + hostname + '"}.'
    )


def _not_found() -> NotFound:
    return NotFound("Domain not found")


CUSTOM_DOMAINS = web.AppKey("domains_service", DomainsService)
