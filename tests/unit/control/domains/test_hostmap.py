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
    await hosts.invalidate("pod.example.com")
    assert await hosts.podcast_for("pod.example.com") is None
    answers["other.example.com"] = podcast
    now[0] = 31.0  # without shared versions, other nodes' changes arrive within the TTL
    assert await hosts.podcast_for("other.example.com") == podcast


class SharedVersions:
    """What `RedisHostVersions` is to every node: one counter (None: unreachable)."""

    def __init__(self) -> None:
        self.value: int | None = 0

    async def current(self) -> int | None:
        return self.value

    async def bump(self) -> None:
        assert self.value is not None
        self.value += 1


async def test_a_change_on_one_node_reaches_the_others_at_once():
    podcast = uuid.uuid4()
    answers: dict[str, uuid.UUID] = {"pod.example.com": podcast}
    calls: list[str] = []

    async def load(host: str) -> uuid.UUID | None:
        calls.append(host)
        return answers.get(host)

    versions = SharedVersions()
    now = [0.0]
    first, second = (HostMap(load, versions, monotonic=lambda: now[0]) for _ in range(2))
    assert await first.podcast_for("pod.example.com") == podcast
    assert await second.podcast_for("pod.example.com") == podcast
    assert await second.podcast_for("pod.example.com") == podcast
    assert len(calls) == 2  # one load per node, then cached
    answers.clear()  # detached, through the first node
    await first.invalidate("pod.example.com")
    assert await second.podcast_for("pod.example.com") is None  # no TTL to wait for
    assert await second.podcast_for("pod.example.com") is None
    assert len(calls) == 3
    versions.value = None  # Redis down: entries live their TTL, no errors
    answers["pod.example.com"] = podcast
    assert await second.podcast_for("pod.example.com") is None
    now[0] = 31.0
    assert await second.podcast_for("pod.example.com") == podcast


async def test_a_load_racing_a_change_is_not_kept():
    versions = SharedVersions()
    answers = {"pod.example.com": uuid.uuid4()}
    stale = answers["pod.example.com"]
    loads = 0

    async def load(host: str) -> uuid.UUID | None:
        nonlocal loads
        loads += 1
        found = answers.get(host)
        if loads == 1:  # the first read sees the old row; the change commits meanwhile
            answers.clear()
            await versions.bump()
        return found

    hosts = HostMap(load, versions)
    assert await hosts.podcast_for("pod.example.com") == stale  # what that read saw
    assert await hosts.podcast_for("pod.example.com") is None  # not kept past the change
    assert loads == 2
