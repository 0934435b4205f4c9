"""Who is calling: the TCP peer's address, or, behind reverse proxies the operator trusts
(`TRUST_FORWARDED_FOR`, `TRUSTED_PROXIES`), the client's address from `X-Forwarded-For`.

Each proxy appends the address it received the request from, so the header reads
`client, proxy1, proxy2` and only its right end is written by proxies we know: anything
to the left may be whatever the client sent. The header is therefore read from the right
(the real-IP rule of nginx's `real_ip_recursive`, HAProxy and Express's `trust proxy`):
the peer must itself be a trusted proxy, else its own address is the answer; then each
entry inside a trusted range is skipped and the first one outside them is the client. If
every entry is trusted, the leftmost is taken. An entry that is not an address stops the
walk at the last good one, so garbage never becomes a rate-limit key.

This runs on every media request, so the common case costs nothing extra (trust off: the
peer's address as aiohttp has it) and, with trust on, a header already seen is answered
from a small memo instead of parsing addresses again (`admits` and `check_route` of one
request, and every poll of one player, ask the same question)."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import NamedTuple

from aiohttp import web

from mediaserver.config import Settings

Network = IPv4Network | IPv6Network

#: Trusted when `TRUST_FORWARDED_FOR` is on and `TRUSTED_PROXIES` is empty: the private
#: (RFC 1918, RFC 4193) and loopback ranges, where a cluster's ingress and pods live.
PRIVATE_NETWORKS: tuple[Network, ...] = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv4Network("127.0.0.0/8"),
    IPv6Network("::1/128"),
    IPv6Network("fc00::/7"),
)
#: Answers remembered per (peer, header); the memo is emptied when full.
MEMO_SIZE = 16_384
#: Longer headers are resolved every time rather than remembered (bounded memory).
MEMO_HEADER_CHARS = 256
_V4_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, RFC 4291 §2.5.5.2


class Address(NamedTuple):
    """An IP address: its usual spelling (one per address), version and value."""

    text: str
    version: int
    value: int


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (`203.0.113.7`, `2001:db8::1`, and with a port:
    `203.0.113.7:4711`, `[2001:db8::1]:4711`); IPv4-mapped IPv6 counts as IPv4. None if
    `text` is not one. The C parser (`inet_pton`: dotted quads only, no leading zeros):
    `ipaddress.ip_address` costs ten times as much."""
    host = text.strip()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        host = host[1:end]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        if ":" not in host:
            return Address(host, 4, int.from_bytes(inet_pton(AF_INET, host)))
        packed = inet_pton(AF_INET6, host)
    except OSError:
        return None
    if packed[:12] == _V4_MAPPED:
        return Address(inet_ntop(AF_INET, packed[12:]), 4, int.from_bytes(packed[12:]))
    return Address(inet_ntop(AF_INET6, packed), 6, int.from_bytes(packed))


class Ranges:
    """Trusted proxy ranges, parsed once (`ipaddress`) and checked as integers."""

    def __init__(self, networks: Iterable[Network]) -> None:
        networks = tuple(networks)
        self._by_version = {
            version: tuple(
                (int(net.network_address), int(net.netmask))
                for net in networks
                if net.version == version
            )
            for version in (4, 6)
        }

    def __contains__(self, address: Address) -> bool:
        value = address.value
        for base, mask in self._by_version[address.version]:
            if value & mask == base:
                return True
        return False


def forwarded_client(peer: str, forwarded: str, trusted: Ranges) -> str:
    """The client's address given the TCP `peer`, the `X-Forwarded-For` value and the
    trusted proxy ranges (module doc)."""
    address = parse_address(peer)
    if address is None or address not in trusted:
        return peer
    client = address.text
    for entry in reversed(forwarded.split(",")):
        address = parse_address(entry)
        if address is None:
            return client
        client = address.text
        if address not in trusted:
            return client
    return client


class ClientAddress:
    """`client_address(request)` → the caller's address, by the node's settings."""

    def __init__(self, trusted: Iterable[Network] | None) -> None:
        #: None: `X-Forwarded-For` is ignored.
        self._trusted = Ranges(trusted) if trusted is not None else None
        #: The address is the TCP peer's, `request.remote` (None: not a TCP connection).
        self.peer_only = trusted is None
        self._memo: dict[tuple[str, str], str] = {}

    @classmethod
    def of(cls, settings: Settings) -> ClientAddress:
        if not settings.trust_forwarded_for:
            return cls(None)
        return cls(settings.trusted_proxies or PRIVATE_NETWORKS)

    def __call__(self, request: web.Request) -> str:
        peer = request.remote or "unknown"
        if self._trusted is None:
            return peer
        headers = request.headers.getall("X-Forwarded-For", ())
        if not headers:
            return peer
        # Several header lines are one list (RFC 9110 §5.3): a proxy may add its own line.
        forwarded = headers[0] if len(headers) == 1 else ",".join(headers)
        if len(forwarded) > MEMO_HEADER_CHARS:
            return forwarded_client(peer, forwarded, self._trusted)
        key = (peer, forwarded)
        client = self._memo.get(key)
        if client is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            client = self._memo[key] = forwarded_client(peer, forwarded, self._trusted)
        return client


#: The node's `ClientAddress` (the throttle's), for routes that need the caller's address.
CLIENT_ADDRESS = web.AppKey("client_address", ClientAddress)
