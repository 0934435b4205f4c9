"""Prometheus metrics of a node, kept in one registry per application (so tests can build
several apps in one process) and exposed at `/metrics`."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The registry plus the HTTP metrics every request updates. Other components add their
    own collectors to `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by method, status code and route template.",
            ["method", "code", "endpoint"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to response headers, by route template.",
            ["method", "endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

        #: (method, endpoint, code) → its labelled children: `labels()` costs more than the
        #: update itself, and every request makes one. Bounded by routes × methods × codes.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, method: str, endpoint: str, code: int, seconds: float) -> None:
        children = self._children.get((method, endpoint, code))
        if children is None:
            children = self._children[method, endpoint, code] = (
                self.http_requests.labels(method, str(code), endpoint),
                self.http_duration.labels(method, endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
