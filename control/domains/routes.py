"""`/v1/domains*`: custom domains for podcast feeds."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.domains.schemas import DomainIn, DomainList, DomainOut
from control.domains.service import CUSTOM_DOMAINS
from control.schemas import PageQuery
from control.security import principal_of

api = Api()
DOMAIN = "/v1/domains/{domain_id}"
_OWNER_ONLY = "Only the domain's owner or an admin can do this"


@api.post(
    "/v1/domains",
    summary="Register a custom domain for podcast feeds",
    description="Returns the DNS TXT record proving control of the domain. On staging the "
    "domain is verified and its TLS certificate issued once `DOMAIN_VERIFY_DELAY_SECONDS` "
    "have passed; then attach it with `PATCH /v1/podcasts/{podcast_id}`. 409 when the "
    "domain is already registered.",
    tag="domains",
    body=DomainIn,
    response=DomainOut,
    status=201,
    scope="domains:write",
    errors=(400, 401, 403, 409, 429),
    examples={
        409: (
            "Domain podcasts.example.com is already registered",
            "api.example.com is this server's own host name",
        )
    },
)
async def register_domain(request: web.Request, body: DomainIn) -> DomainOut:
    return await request.app[CUSTOM_DOMAINS].register(principal_of(request), body)


@api.get(
    "/v1/domains",
    summary="The caller's custom domains, newest first",
    tag="domains",
    query=PageQuery,
    response=DomainList,
    scope="domains:read",
    errors=(400, 401, 403, 429),
)
async def list_domains(request: web.Request, query: PageQuery) -> DomainList:
    return await request.app[CUSTOM_DOMAINS].list(principal_of(request), query)


@api.get(
    DOMAIN,
    summary="A custom domain's verification and TLS status (owner or admin)",
    tag="domains",
    response=DomainOut,
    scope="domains:read",
    errors=(401, 403, 404, 429),
    examples={403: ("Your token lacks the 'domains:read' scope", _OWNER_ONLY)},
)
async def get_domain(request: web.Request) -> DomainOut:
    domain_id = path_uuid(request, "domain_id", "Domain")
    return await request.app[CUSTOM_DOMAINS].get(principal_of(request), domain_id)


@api.delete(
    DOMAIN,
    summary="Remove a custom domain (owner or admin)",
    description="409 while a podcast is served at it: detach it from the podcast first.",
    tag="domains",
    status=204,
    scope="domains:write",
    errors=(401, 403, 404, 409, 429),
    examples={
        403: ("Your token lacks the 'domains:write' scope", _OWNER_ONLY),
        409: "Domain podcasts.example.com is attached to podcast "
        "3fa85f64-5717-4562-b3fc-2c963f66afa6: detach it first with PATCH "
        '/v1/podcasts/{podcast_id} {"custom_domain": null}',
    },
)
async def delete_domain(request: web.Request) -> None:
    domain_id = path_uuid(request, "domain_id", "Domain")
    await request.app[CUSTOM_DOMAINS].delete(principal_of(request), domain_id)
