"""Routing by `Host`: header normalisation and the in-process cache in front of the lookup."""

from __future__ import annotations

import uuid

import pytest

from control.domains.hostmap import HostMap, host_of
from control.domains.schemas import normalize_hostname


@pytest.mark.parametrize(
    ("header", "host"),
    [("Pod.Example.COM", "pod.example.com"), ("pod.example.com:8443", "pod.example.com"),
     ("pod.example.com.", "pod.example.com"), ("[::1]:80", None), ("", None), (None, None)],
)  # fmt: skip
def test_host_of(header, host):
    assert host_of(header) == host


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Podcast.DJName.com.", "podcast.djname.com"), ("bücher.example", "xn--bcher-kva.example"),
     ("a-b.c-d.io", "a-b.c-d.io")],
)  # fmt: skip
def test_normalize_hostname(value, expected):
    assert normalize_hostname(value) == expected


async def test_cached_until_invalidated_or_expired():
    podcast = uuid.uuid4()
    answers = {"pod.example.com": podcast}
    calls: list[str] = []
    now = [0.0]

    async def load(host: str) -> uuid.UUID | None:
        calls.append(host)
        return answers.get(host)

    hosts = HostMap(load, ttl=30, monotonic=lambda: now[0])
    assert await hosts.podcast_for("pod.example.com") == podcast
    assert await hosts.podcast_for("pod.example.com") == podcast
    assert await hosts.podcast_for("other.example.com") is None
    assert await hosts.podcast_for("other.example.com") is None
    assert calls == ["pod.example.com", "other.example.com"]
    answers.clear()
    hosts.invalidate("pod.example.com")
    assert await hosts.podcast_for("pod.example.com") is None
    answers["other.example.com"] = podcast
    now[0] = 31.0  # other nodes' changes arrive within the TTL
    assert await hosts.podcast_for("other.example.com") == podcast
