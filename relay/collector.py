"""Prometheus figures of the relays, read from their counters at scrape time so the
broadcast path never touches a metrics object."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from relay.manager import RelayManager

#: The `stream` label of the private and paid streams' figures, summed: naming them would
#: tell anyone who can read `/metrics` which private streams exist and who listens when.
UNLISTED = "unlisted"


class RelayCollector(Collector):
    """Per-stream figures of public, free streams; the others summed under `UNLISTED`
    (`mediaserver_relay_connected` then counts their connected relays)."""

    def __init__(self, manager: RelayManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        listeners = GaugeMetricFamily(
            "mediaserver_listeners",
            "Connected MP3 listeners plus active HLS players.",
            labels=["stream"],
        )
        connected = GaugeMetricFamily(
            "mediaserver_relay_connected",
            "1 while the relay receives audio from its source.",
            labels=["stream"],
        )
        dropped = CounterMetricFamily(
            "mediaserver_listeners_dropped",
            "Listeners dropped for falling too far behind.",
            labels=["stream"],
        )
        bytes_in = CounterMetricFamily(
            "mediaserver_relay_received_bytes",
            "MP3 bytes received from the source.",
            labels=["stream"],
        )
        bytes_out = CounterMetricFamily(
            "mediaserver_relay_sent_bytes", "Bytes written to MP3 listeners.", labels=["stream"]
        )
        segments = CounterMetricFamily(
            "mediaserver_hls_segments", "Live HLS segments published.", labels=["stream"]
        )
        families: tuple[GaugeMetricFamily | CounterMetricFamily, ...] = (
            listeners,
            connected,
            dropped,
            bytes_in,
            bytes_out,
            segments,
        )
        unlisted = [0.0] * len(families)
        for relay in self._manager.relays():
            counters = relay.hub.counters
            figures = (
                relay.hub.listeners + relay.hls_sessions,
                1.0 if relay.connected else 0.0,
                counters.dropped,
                counters.bytes_in,
                counters.bytes_out,
                relay.hls.stats.segments,
            )
            if relay.source.listed:
                stream = [str(relay.source.stream_id)]
                for family, value in zip(families, figures, strict=True):
                    family.add_metric(stream, value)
            else:
                unlisted = [a + b for a, b in zip(unlisted, figures, strict=True)]
        for family, value in zip(families, unlisted, strict=True):
            family.add_metric([UNLISTED], value)
        yield from families
