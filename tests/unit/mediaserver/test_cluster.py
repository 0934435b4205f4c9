"""Ownership in the cluster, against the machine's Redis: rendezvous hashing, leases that
never let two nodes relay one stream, handover when members come and go, and a Redis that
comes back empty."""

from __future__ import annotations

import asyncio
import collections
import uuid
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from mediaserver.cluster import PREFIX, Member, RedisCluster, owner_of
from relay.status import StreamSource
from tests.cluster import eventually

pytestmark = pytest.mark.timeout(120)

#: A database of its own (the node-process tests use another), emptied by each test.
REDIS_URL = "redis://127.0.0.1:6379/12"


def source(stream_id: uuid.UUID) -> StreamSource:
    return StreamSource(stream_id, "http://127.0.0.1:1", "/live", "icecast2", None, "x", None, None)


@dataclass
class Relays:
    """Stands in for a node's relay manager: which streams it relays right now."""

    running: set[uuid.UUID] = field(default_factory=set)
    starts: int = 0

    async def ensure(self, src: StreamSource) -> None:
        if src.stream_id not in self.running:
            self.starts += 1
        self.running.add(src.stream_id)

    async def stop(self, stream_id: uuid.UUID) -> None:
        self.running.discard(stream_id)

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        return None

    def snapshot(self, stream_id: uuid.UUID) -> None:
        return None

    def relay(self, stream_id: uuid.UUID) -> None:
        return None  # no real relay: nothing to tell the players other nodes count


@dataclass
class Streams:
    sources: dict[uuid.UUID, StreamSource]

    async def enabled_sources(self) -> list[StreamSource]:
        return list(self.sources.values())

    async def source_for(self, stream_id: uuid.UUID) -> StreamSource | None:
        return self.sources.get(stream_id)

    def forget(self, stream_id: uuid.UUID) -> None:
        return None


@pytest.fixture
async def redis():
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def test_rendezvous_owners_are_stable_and_spread():
    streams = [uuid.uuid4() for _ in range(3000)]
    three = ["node-0", "node-1", "node-2"]
    owners = {s: owner_of(s, three) for s in streams}
    counts = collections.Counter(owners.values())
    assert all(800 < counts[node] < 1200 for node in three), counts
    # A fourth member takes about a quarter, each from whoever had it; nothing else moves.
    four = [*three, "node-3"]
    moved = [s for s in streams if owner_of(s, four) != owners[s]]
    assert all(owner_of(s, four) == "node-3" for s in moved)
    assert 600 < len(moved) < 900
    # A member leaving moves only its own streams.
    two = ["node-0", "node-2"]
    assert all(owner_of(s, two) == owners[s] for s in streams if owners[s] != "node-1")
    assert owner_of(streams[0], []) is None


def owners_relay(relays: dict[str, Relays], sources, names: list[str]):
    """A check: every stream relayed by its owner among `names`, and by no one else."""

    async def check() -> bool:
        total = sum(len(relays[n].running) for n in names)
        owned = all(s in relays[owner_of(s, names)].running for s in sources)
        return total == len(sources) and owned

    return check


def node(redis, name: str, relays: Relays) -> RedisCluster:
    me = Member(name, f"http://{name}.internal", f"https://{name}.example.com")
    return RedisCluster(redis, relays, me, lease_seconds=1.5, wait_seconds=0)  # type: ignore[arg-type]


async def test_members_come_and_go_and_no_stream_is_ever_relayed_twice(redis):
    sources = {s: source(s) for s in (uuid.uuid4() for _ in range(24))}
    streams = Streams(sources)
    relays = {name: Relays() for name in ("a", "b", "c")}
    nodes = {name: node(redis, name, relays[name]) for name in relays}
    overlaps: list[uuid.UUID] = []

    async def watch() -> None:  # sampled every few ms through everything below
        while True:
            seen: collections.Counter[uuid.UUID] = collections.Counter()
            for r in relays.values():
                seen.update(r.running)
            overlaps.extend(s for s, count in seen.items() if count > 1)
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())

    def settled(names: list[str]):
        return owners_relay(relays, sources, names)

    try:
        await nodes["a"].start(streams)
        await eventually(settled(["a"]), timeout=10)
        await nodes["b"].start(streams)
        await nodes["c"].start(streams)
        await eventually(settled(["a", "b", "c"]), timeout=10)
        members = ["a", "b", "c"]
        # The redirect points at the owner's public URL, from any node.
        stream_id = next(iter(sources))
        owner = owner_of(stream_id, members)
        for name, n in nodes.items():
            expected = None if name == owner else f"https://{owner}.example.com"
            assert n.elsewhere(stream_id) == expected

        # b leaves gracefully: a and c hold everything again, at once.
        await nodes["b"].leave()
        assert not relays["b"].running
        await eventually(settled(["a", "c"]), timeout=3)

        # c stops renewing (a crash): its leases expire and a takes everything.
        for task in nodes["c"]._tasks:
            task.cancel()
        relays["c"].running.clear()  # the crashed process relays nothing any more
        await eventually(settled(["a"]), timeout=6)
        assert nodes["a"].stats.takeovers > 0
    finally:
        watcher.cancel()
        for n in nodes.values():
            await n.close()
    assert overlaps == []


async def test_a_redis_that_comes_back_empty_keeps_the_owners(redis):
    sources = {s: source(s) for s in (uuid.uuid4() for _ in range(8))}
    streams = Streams(sources)
    relays = {name: Relays() for name in ("a", "b")}
    nodes = {name: node(redis, name, relays[name]) for name in relays}
    try:
        for n in nodes.values():
            await n.start(streams)

        await eventually(owners_relay(relays, sources, ["a", "b"]), timeout=10)
        before = {name: set(r.running) for name, r in relays.items()}
        starts = {name: r.starts for name, r in relays.items()}
        await redis.flushdb()  # a restarted Redis keeps nothing
        await asyncio.sleep(2.0)
        assert {name: set(r.running) for name, r in relays.items()} == before
        assert {name: r.starts for name, r in relays.items()} == starts  # nothing restarted
        held = await redis.mget([f"{PREFIX}lease:{s}" for s in sources])
        assert all(value is not None for value in held)
    finally:
        for n in nodes.values():
            await n.close()


async def test_changes_still_arrive_after_the_subscription_connection_drops(redis):
    stream_id = uuid.uuid4()
    streams = Streams({})
    relays = {name: Relays() for name in ("a", "b")}
    nodes = {name: node(redis, name, relays[name]) for name in relays}
    try:
        for n in nodes.values():
            await n.start(streams)
        # Both nodes lose their subscription (only theirs: other tests' nodes may be up).
        for client in await redis.client_list(_type="pubsub"):
            if client["db"] == REDIS_URL.rsplit("/", 1)[1]:
                await redis.client_kill_filter(_id=client["id"])
        await asyncio.sleep(0.2)
        # A stream created through a, after the drop: its owner starts it.
        streams.sources[stream_id] = source(stream_id)
        owner = owner_of(stream_id, ["a", "b"])
        await nodes["a"].ensure(streams.sources[stream_id])

        async def started() -> bool:
            return stream_id in relays[owner].running

        await eventually(started, timeout=5)
        # And a change published later reaches the other node by message again.
        other = "b" if owner == "a" else "a"
        # (Left among the enabled streams, so only the message, not a reconcile, stops it.)
        await nodes[other].stop(stream_id)

        async def stopped() -> bool:
            return stream_id not in relays[owner].running

        await eventually(stopped, timeout=2)
    finally:
        for n in nodes.values():
            await n.close()


async def test_two_processes_under_one_name_never_relay_one_stream_twice(redis):
    sources = {s: source(s) for s in (uuid.uuid4() for _ in range(8))}
    streams = Streams(sources)
    first, second = Relays(), Relays()
    twins = [node(redis, "same", first), node(redis, "same", second)]
    try:
        for n in twins:
            await n.start(streams)
        await asyncio.sleep(1.5)  # a few rounds
        assert first.running | second.running == set(sources)
        assert not first.running & second.running
        # When one of them stops, the other relays everything.
        await twins[0].close()
        first.running.clear()

        async def all_taken() -> bool:
            return second.running == set(sources)

        await eventually(all_taken, timeout=5)
    finally:
        for n in twins:
            await n.close()


async def test_the_next_owner_lists_the_segments_the_last_one_published(redis):
    from datetime import UTC, datetime

    from hls.live import HlsPosition, LiveHls
    from hls.playlist import Segment
    from hls.window import WindowEntry
    from mediaserver.cluster import RedisPositions

    positions = RedisPositions(redis)
    stream_id = uuid.uuid4()
    now = datetime.now(UTC)
    for n in range(100, 108):  # the dead owner's run: 8 segments, the first one marked
        segment = Segment("", 6.0, now, discontinuity=n == 100, title=f"Track {n}")
        position = HlsPosition(n + 1, 5 + 1)  # 5 before the run, its first segment's one
        await positions.save(stream_id, position, WindowEntry(n, segment, bytes([n]) * 188))

    resumed = await positions.load(stream_id)
    assert resumed is not None and resumed.next_sequence == 108
    assert [e.sequence for e in resumed.recent] == list(range(102, 108))  # a window's worth
    assert resumed.recent[-1].payload == bytes([107]) * 188
    assert resumed.recent[-1].segment.title == "Track 107"
    shared = await positions.shared_window(stream_id)
    assert shared is not None and [e.payload for e in shared.recent] == [b""] * 6

    hls = LiveHls(6, lambda: now, resume=resumed)
    playlist = hls.playlist(lambda n: f"hls/{n}.ts")
    assert playlist.media_sequence == 102 and hls.window.next_sequence == 108
    assert playlist.discontinuity_sequence == 6  # the run's marked segment left the window
    assert hls.window.get(107).payload == bytes([107]) * 188
