"""Which URLs the server will fetch for external media (SSRF guard)."""

from __future__ import annotations

import ipaddress

import pytest

from control.urlguard import GuardedResolver, UrlGuard, UrlRefused, check_syntax, is_public


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1",  # noqa: S104 - an address under test, not a bind "255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "ff02::1",
     # NAT64 (well-known and local-use prefixes) and IPv4-compatible forms of internal IPv4
     "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b:1::7f00:1",
     "64:ff9b:1:2::c0a8:101", "::127.0.0.1", "::10.0.0.1", "::169.254.169.254"],
)  # fmt: skip
def test_internal_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "::8.8.8.8"]
)
def test_public_addresses(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/a.mp3", "must be an http or https URL"),
        ("file:///etc/passwd", "must be an http or https URL"),
        ("http:///a.mp3", "must include a host name"),
        ("http://user:pw@example.com/a.mp3", "must not contain credentials"),
        ("http://example.com:99999/a.mp3", "has an invalid port"),
        ("http://exa mple.com/a.mp3", "must not contain spaces"),
        ("http://example.com/" + "a" * 2048, "must be at most 2048 characters long"),
    ],
)
def test_malformed_urls(url, message):
    with pytest.raises(ValueError, match=message):
        check_syntax(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/a.mp3", "http://localhost:8080/a.mp3", "https://[::1]/a.mp3",
     "http://2130706433/a.mp3", "http://169.254.169.254/latest/meta-data/"],
)  # fmt: skip
async def test_check_refuses_internal_hosts(url):
    with pytest.raises(UrlRefused):
        await UrlGuard(allow_private=False).check(url)
    await UrlGuard(allow_private=True).check(url)  # tests and private deployments


async def test_check_refuses_hosts_that_do_not_resolve():
    with pytest.raises(UrlRefused, match="cannot be resolved"):
        await UrlGuard().check("http://no-such-host.invalid/a.mp3")


async def test_the_resolver_refuses_private_answers_at_connection_time():
    """What defeats DNS rebinding: the connection's own lookup is checked too."""
    with pytest.raises(OSError, match="non-public address"):
        await GuardedResolver(allow_private=False).resolve("localhost", 80)
    assert await GuardedResolver(allow_private=True).resolve("localhost", 80)
