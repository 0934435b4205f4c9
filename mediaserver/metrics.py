"""Prometheus metrics of a node, kept in one registry per application (so tests can build
several apps in one process) and exposed at `/metrics`."""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST


#: Upper bounds of the request duration histogram, seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Upper bounds of the listening session histogram, seconds (10 s to 8 h).
LISTENING_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14_400, 28_800)


class RequestStats(Collector):
    """`http_requests_total` (by method, code, endpoint) and the
    `http_request_duration_seconds` histogram (by method, endpoint), counted in plain lists
    and turned into metric families only when scraped. prometheus_client's own `Counter` and
    `Histogram` take a lock and walk the buckets on every update: on the media routes'
    request path that was several microseconds per request, this is one `bisect`."""

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self._bounds = buckets
        #: (method, endpoint, code) → [count, sum of seconds, count per bucket (+Inf last)].
        #: Bounded by routes × methods × codes (endpoints are route templates).
        self._series: dict[tuple[str, str, int], list[Any]] = {}

    def observe(self, method: str, endpoint: str, code: int, seconds: float) -> None:
        series = self._series.get((method, endpoint, code))
        if series is None:
            series = self._series[method, endpoint, code] = [0, 0.0, [0] * (len(self._bounds) + 1)]
        series[0] += 1
        series[1] += seconds
        series[2][bisect_left(self._bounds, seconds)] += 1  # `le`: a bound counts its value

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests by method, status code and route template.",
            labels=["method", "code", "endpoint"],
        )
        durations: dict[tuple[str, str], list[Any]] = {}
        for (method, endpoint, code), (count, total, buckets) in list(self._series.items()):
            requests.add_metric([method, str(code), endpoint], count)
            merged = durations.setdefault((method, endpoint), [0.0, [0] * len(buckets)])
            merged[0] += total
            merged[1] = [a + b for a, b in zip(merged[1], buckets, strict=True)]
        yield requests
        histogram = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from request start to the response's headers (for a streamed response) "
            "or its end, by route template.",
            labels=["method", "endpoint"],
        )
        bounds = [*(str(float(bound)) for bound in self._bounds), "+Inf"]
        for (method, endpoint), (total, buckets) in durations.items():
            cumulative = list(itertools.accumulate(buckets))
            histogram.add_metric(
                [method, endpoint], list(zip(bounds, cumulative, strict=True)), total
            )
        yield histogram


class Metrics:
    """The registry plus the HTTP metrics every request updates. Other components add their
    own collectors to `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self.requests = RequestStats()
        self.registry.register(self.requests)
        self.observe_request = self.requests.observe
        self.listening = Histogram(
            "mediaserver_listening_seconds",
            "Length of streamed responses (MP3 listening sessions) from their headers to "
            "their end, by route template; their time to headers is the request duration.",
            ["endpoint"],
            buckets=LISTENING_BUCKETS,
            registry=self.registry,
        )

    def observe_listening(self, endpoint: str, seconds: float) -> None:
        self.listening.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
