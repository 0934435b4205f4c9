"""Fetching user-supplied URLs without becoming an SSRF proxy.

Episodes (and playlist tracks) may point at media on other servers. Before the server
requests such a URL it checks that:

- the scheme is http or https, there is a host and no `user:password@`;
- every address the host resolves to is public: loopback, private (RFC 1918, ULA),
  link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, reserved and
  unspecified addresses are refused, and an IPv6 address that embeds an IPv4 one
  (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, 6to4, NAT64 `64:ff9b::/96` and
  `64:ff9b:1::/48`) is judged by the IPv4 address it reaches — unless the node runs
  with `ALLOW_PRIVATE_MEDIA_URLS` (tests, private deployments);
- the same holds for every redirect hop (`UrlGuard.request` follows them itself), and the
  connection itself goes through `GuardedResolver`, so a DNS answer that changes between
  the check and the connection (DNS rebinding) cannot reach a private address either.

Usage: `guard = UrlGuard(allow_private)`, `session = guard.session(timeout)`, then
`async with await guard.request(session, "HEAD", url) as response: ...`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from mediaserver.errors import Unprocessable

MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Unprocessable):
    """The URL is not one this server will fetch (422)."""


def check_syntax(url: str) -> str:
    """`url` if it is an absolute http(s) URL with a host and no credentials, else
    ValueError with a message fit for a validation error (pydantic validators use it)."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters long")
    if any(c.isspace() for c in url):
        raise ValueError("must not contain spaces")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must include a host name")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url


#: NAT64 prefixes (RFC 6052 well-known, RFC 8215 local-use): a gateway translates the
#: address to the IPv4 address in its last 32 bits (the /96 form, the one deployed).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: IPv4-compatible addresses (`::a.b.c.d`, RFC 4291 §2.5.5.1, deprecated): stacks that still
#: route them reach the IPv4 address. `::` and `::1` are in this range too, and not public.
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, IPv4-compatible, 6to4,
    NAT64; None when it carries none."""
    mapped = address.ipv4_mapped or address.sixtofour
    if mapped is not None:
        return mapped
    if address in _V4_COMPATIBLE or any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether `address` is globally routable unicast (what a public URL may resolve to);
    an IPv6 address that embeds an IPv4 one is judged by that (`embedded_ipv4`)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses non-public answers."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                if not is_public(ipaddress.ip_address(result["host"])):
                    raise OSError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._inner.close()


class UrlGuard:
    """Decides which URLs may be fetched and fetches them safely (see the module doc)."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    async def check(self, url: str) -> None:
        """Raise `UrlRefused` unless `url` is well-formed and (unless private addresses
        are allowed) every address of its host is public."""
        try:
            check_syntax(url)
        except ValueError as exc:
            raise UrlRefused(f"The URL {exc}") from None
        if self.allow_private:
            return
        host = urlsplit(url).hostname or ""
        for address in await _addresses(host):
            if not is_public(address):
                raise UrlRefused(
                    "The URL points to a private, loopback or link-local address; "
                    "only public addresses can be used"
                )

    def session(
        self, timeout_seconds: float, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientSession:
        """A client session whose connections only reach addresses this guard allows."""
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow_private))
        timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers, trust_env=False
        )

    async def request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        max_redirects: int = MAX_REDIRECTS,
    ) -> aiohttp.ClientResponse:
        """`method url`, following up to `max_redirects` redirects, each hop checked.
        The caller closes the response (`async with`). Raises `UrlRefused`, or
        `aiohttp.ClientError` / `TimeoutError` for network failures."""
        for _ in range(max_redirects + 1):
            await self.check(url)
            response = await session.request(method, url, headers=headers, allow_redirects=False)
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                return response
            response.release()
            url = urljoin(url, location)
            if response.status == 303:
                method = "GET" if method != "HEAD" else method
        raise UrlRefused(f"The URL redirects more than {max_redirects} times")


async def public_address(host: str, port: int) -> str:
    """The address to connect to for `host` when every address it resolves to is public
    (`is_public`); OSError otherwise. For connections made without aiohttp's client (the
    relay's source connection), asked at each connection so DNS rebinding is caught."""
    try:
        addresses = await _addresses(host)
    except UrlRefused:
        raise OSError(f"{host} does not resolve") from None
    if not addresses or not all(is_public(address) for address in addresses):
        raise OSError(f"{host} resolves to a non-public address")
    return str(addresses[0])


async def _addresses(host: str) -> list[IPAddress]:
    """Every address `host` stands for (itself when it is an address literal)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRefused(f"The URL's host {host!r} cannot be resolved") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
