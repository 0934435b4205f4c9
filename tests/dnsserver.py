"""A DNS server on loopback (UDP) answering TXT queries from a dict the test fills, with
dnslib's wire format: the resolver `DOMAIN_VERIFIER=dns` asks in the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord


@dataclass
class TxtServer(asyncio.DatagramProtocol):
    """TXT records by name (no trailing dot); other names answer NXDOMAIN."""

    records: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = DNSRecord.parse(data)
        name = str(query.q.qname).rstrip(".").lower()
        self.queries.append(name)
        reply = query.reply()
        if name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        elif query.q.qtype == QTYPE.TXT:
            for value in self.records[name]:
                reply.add_answer(RR(query.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port


@pytest.fixture
async def dns_server() -> AsyncIterator[TxtServer]:
    server = TxtServer()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
    yield server
    transport.close()
