"""HTTP request metrics: the labelled children are reused, never shared across labels."""

from __future__ import annotations

from mediaserver.metrics import Metrics


def test_requests_are_counted_and_timed_per_method_endpoint_and_code() -> None:
    metrics = Metrics()
    live = "/v1/streams/{stream_id}/live.m3u8"
    metrics.observe_request("GET", live, 200, 0.0004)
    metrics.observe_request("GET", live, 200, 0.003)
    metrics.observe_request("GET", live, 404, 0.0002)
    metrics.observe_request("HEAD", live, 200, 0.0001)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    total = "http_requests_total"
    assert sample(total, method="GET", code="200", endpoint=live) == 2
    assert sample(total, method="GET", code="404", endpoint=live) == 1
    assert sample(total, method="HEAD", code="200", endpoint=live) == 1
    # The histogram is by method and endpoint only: both GET codes land in one series.
    count = "http_request_duration_seconds_count"
    assert sample(count, method="GET", endpoint=live) == 3
    bucket = "http_request_duration_seconds_bucket"
    assert sample(bucket, method="GET", endpoint=live, le="0.001") == 2
    assert sample(bucket, method="GET", endpoint=live, le="0.005") == 3
    text = metrics.render().decode()
    assert f'http_requests_total{{code="200",endpoint="{live}",method="GET"}} 2.0' in text
