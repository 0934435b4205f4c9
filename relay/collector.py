"""Prometheus figures of the relays, read from their counters at scrape time so the
broadcast path never touches a metrics object."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from relay.manager import RelayManager


class RelayCollector(Collector):
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
        for relay in self._manager.relays():
            stream = [str(relay.source.stream_id)]
            counters = relay.hub.counters
            listeners.add_metric(stream, relay.hub.listeners + relay.hls_sessions)
            connected.add_metric(stream, 1.0 if relay.connected else 0.0)
            dropped.add_metric(stream, counters.dropped)
            bytes_in.add_metric(stream, counters.bytes_in)
            bytes_out.add_metric(stream, counters.bytes_out)
            segments.add_metric(stream, relay.hls.stats.segments)
        yield from (listeners, connected, dropped, bytes_in, bytes_out, segments)
