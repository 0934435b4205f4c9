"""The caller's address behind reverse proxies: `X-Forwarded-For` read from the right
through the trusted ranges, so what a client writes into the header cannot choose its
rate-limit bucket."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from control.forwarded import (
    MEMO_HEADER_CHARS,
    PRIVATE_NETWORKS,
    ClientAddress,
    Ranges,
    forwarded_client,
    parse_address,
)
from mediaserver.config import Settings

CLIENT = "198.51.100.7"
PRIVATE = Ranges(PRIVATE_NETWORKS)
INGRESS = "10.42.0.17"


class _Peer:
    def __init__(self, address: str) -> None:
        self._address = address

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self._address, 40000) if name == "peername" else default


def request(peer: str, *forwarded: str) -> Any:
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
    return make_mocked_request("GET", "/v1/x", headers=headers, transport=_Peer(peer))


def trusting(**settings: Any) -> ClientAddress:
    return ClientAddress.of(Settings(trust_forwarded_for=True, **settings))


def test_without_trust_the_header_is_ignored() -> None:
    resolve = ClientAddress.of(Settings())
    assert resolve(request(INGRESS, CLIENT)) == INGRESS


def test_the_address_the_ingress_saw_is_the_client() -> None:
    assert trusting()(request(INGRESS, CLIENT)) == CLIENT
    assert trusting()(request(INGRESS)) == INGRESS  # no header: the peer itself


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (f"203.0.113.66, {CLIENT}", CLIENT),  # the client wrote the left entry itself
        (f"10.0.0.1, 127.0.0.1, {CLIENT}", CLIENT),  # spoofed "internal" entries too
        (f"{CLIENT}, 10.42.1.3, 10.42.2.4", CLIENT),  # through three proxies (CDN, LB, ingress)
        ("10.1.0.2, 10.42.1.3", "10.1.0.2"),  # every hop trusted: the farthest
    ],
)
def test_read_from_the_right(forwarded: str, client: str) -> None:
    assert forwarded_client(INGRESS, forwarded, PRIVATE) == client


def test_a_peer_outside_the_trusted_ranges_is_the_client() -> None:
    """A client reaching the node directly cannot pick its address with the header."""
    assert trusting()(request("203.0.113.9", CLIENT)) == "203.0.113.9"
    # TRUSTED_PROXIES replaces the private ranges: another private peer is not trusted.
    only_ingress = trusting(trusted_proxies="10.42.0.0/16")
    assert only_ingress(request("192.168.1.5", CLIENT)) == "192.168.1.5"
    assert only_ingress(request(INGRESS, f"192.168.1.5, {CLIENT}")) == CLIENT
    assert only_ingress(request(INGRESS, f"{CLIENT}, 192.168.1.5")) == "192.168.1.5"


def test_ipv6() -> None:
    assert forwarded_client("::1", "2001:db8::7", PRIVATE) == "2001:db8::7"
    assert forwarded_client("fd00::17", "2001:DB8:0:0::7, fd00::3", PRIVATE) == (
        "2001:db8::7"  # one spelling, one bucket
    )
    # A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6: still the same ingress.
    assert forwarded_client(f"::ffff:{INGRESS}", CLIENT, PRIVATE) == CLIENT
    v6_only = Ranges([ip_network("fd00::/8")])
    assert forwarded_client(INGRESS, CLIENT, v6_only) == INGRESS


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (f"{CLIENT}, not-an-address", INGRESS),  # a broken hop: stop at the last good one
        (f"{CLIENT}, 10.42.1.3, unknown", INGRESS),
        ("unknown, 10.42.1.3", "10.42.1.3"),
        (f"{CLIENT},", INGRESS),  # an empty entry is not an address either
        ("", INGRESS),
        (" , ", INGRESS),
        ("999.1.1.1", INGRESS),
        (f"{CLIENT}:4711", CLIENT),  # ports, as some load balancers write them
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7", INGRESS),
    ],
)
def test_garbage_never_becomes_the_address(forwarded: str, client: str) -> None:
    assert forwarded_client(INGRESS, forwarded, PRIVATE) == client


def test_several_header_lines_are_one_list() -> None:
    assert trusting()(request(INGRESS, "203.0.113.66", CLIENT)) == CLIENT


def test_parse_address() -> None:
    assert parse_address(" 198.51.100.7 ") == (CLIENT, 4, 0xC6336407)
    assert parse_address("::ffff:198.51.100.7") == (CLIENT, 4, 0xC6336407)
    assert parse_address("2001:DB8::1") == ("2001:db8::1", 6, 0x20010DB8 << 96 | 1)
    for text in ("example.com:80", "1:2:3", "01.2.3.4", "1.2.3", "fe80::1%eth0", "[::1"):
        assert parse_address(text) is None, text


@given(st.lists(st.text(max_size=40).filter(lambda s: "," not in s), max_size=5))
def test_nothing_the_client_prepends_changes_the_answer(spoofed: list[str]) -> None:
    forwarded = ", ".join([*spoofed, CLIENT, "10.42.1.3"])
    assert forwarded_client(INGRESS, forwarded, PRIVATE) == CLIENT


def test_answers_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("control.forwarded.MEMO_SIZE", 8)
    resolve = trusting()
    for n in range(20):
        assert resolve(request(INGRESS, f"198.51.100.{n}")) == f"198.51.100.{n}"
        assert len(resolve._memo) <= 8
    assert resolve(request(INGRESS, f"{CLIENT}, 10.42.1.3")) == CLIENT
    assert resolve(request(INGRESS, f"{CLIENT}, 10.42.1.3")) == CLIENT  # from the memo
    long_header = ", ".join(["10.0.0.1"] * 100 + [CLIENT])
    assert resolve(request(INGRESS, long_header)) == CLIENT
    assert all(len(header) <= MEMO_HEADER_CHARS for _, header in resolve._memo)
