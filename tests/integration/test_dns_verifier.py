"""`DOMAIN_VERIFIER=dns`: a custom domain is verified once the TXT challenge it was given is
published, looked up through `DNS_RESOLVER` (a DNS server on loopback, tests/dnsserver.py);
a missing or wrong record leaves it pending and unattachable."""

from __future__ import annotations

import uuid

from control.domains.dns import DnsVerifier
from tests.accounts import user_headers
from tests.podcasts import PODCASTS, create_podcast

pytest_plugins = ["tests.dnsserver"]

DOMAINS = "/v1/domains"


async def test_a_domain_is_verified_by_its_published_txt_record(make_client, dns_server):
    client = await make_client(domain_verifier="dns", dns_resolver=dns_server.address)
    _, dj = await user_headers(client, "dj")
    host = f"pod-{uuid.uuid4().hex[:8]}.example.org"
    registered = await client.post(DOMAINS, json={"custom_domain": host}, headers=dj)
    assert registered.status == 201
    domain = await registered.json()
    record = domain["dns_record"]
    assert record["name"] == f"_mediaserver-challenge.{host}"
    url = f"{DOMAINS}/{domain['domain_id']}"
    podcast_id = await create_podcast(client, dj)

    async def status() -> str:
        return str((await (await client.get(url, headers=dj)).json())["verification_status"])

    assert await status() == "pending"  # no such name yet (NXDOMAIN)
    dns_server.records[record["name"]] = ["acme-challenge=someone-elses", "v=spf1 -all"]
    assert await status() == "pending"
    attach = {"custom_domain": host}
    refused = await client.patch(f"{PODCASTS}/{podcast_id}", json=attach, headers=dj)
    assert refused.status == 422
    assert (await refused.json())["error"] == f"Custom domain {host} is not verified yet"

    dns_server.records[record["name"]].append(record["value"])
    response = await client.get(url, headers=dj)
    body = await response.json()
    assert (body["verification_status"], body["tls_status"]) == ("verified", "issued")
    assert body["verified_at"] is not None
    attached = await client.patch(f"{PODCASTS}/{podcast_id}", json=attach, headers=dj)
    assert attached.status == 200, await attached.text()
    # Verified for good: the record may go, nothing asks the resolver again.
    asked = len(dns_server.queries)
    dns_server.records.clear()
    assert await status() == "verified"
    assert len(dns_server.queries) == asked


async def test_a_record_split_into_strings_is_read_whole(dns_server):
    dns_server.records["_mediaserver-challenge.long.example"] = ["acme-challenge=" + "ab" * 120]
    values = await DnsVerifier(dns_server.address).txt_values("_mediaserver-challenge.long.example")
    assert values == {"acme-challenge=" + "ab" * 120}
