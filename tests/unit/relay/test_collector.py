"""`/metrics` names only public, free streams: the figures of private and paid ones are
summed under one `unlisted` label, so a scrape does not reveal which exist or who listens."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from relay.collector import RelayCollector
from relay.status import StreamSource


def relay(listed: bool, listeners: int, bytes_out: int) -> Any:
    source = StreamSource(uuid.uuid4(), "http://s", "/", "icecast2", None, "n", None, None, listed)
    counters = SimpleNamespace(dropped=1, bytes_in=10, bytes_out=bytes_out)
    return SimpleNamespace(
        source=source,
        hub=SimpleNamespace(listeners=listeners, counters=counters),
        hls_sessions=1,
        connected=True,
        hls=SimpleNamespace(stats=SimpleNamespace(segments=2)),
    )


def test_private_and_paid_streams_are_summed_not_named():
    public, private, paid = relay(True, 5, 100), relay(False, 3, 30), relay(False, 4, 40)
    manager = SimpleNamespace(relays=lambda: [public, private, paid])
    registry = CollectorRegistry()
    registry.register(RelayCollector(manager))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert f'mediaserver_listeners{{stream="{public.source.stream_id}"}} 6.0' in text
    assert 'mediaserver_listeners{stream="unlisted"} 9.0' in text  # (3 + 1) + (4 + 1)
    assert 'mediaserver_relay_sent_bytes_total{stream="unlisted"} 70.0' in text
    assert 'mediaserver_relay_connected{stream="unlisted"} 2.0' in text
    for hidden in (private, paid):
        assert str(hidden.source.stream_id) not in text
