"""Which node relays which stream: the one place that decides it.

Alone (no `REDIS_URL`), the node relays every enabled stream (`LocalCluster`). With Redis,
the nodes form a cluster (`RedisCluster`):

- **Members.** Each node announces itself (`NODE_NAME`, internal and public URL) under a
  key that expires `CLUSTER_LEASE_SECONDS` after its last renewal; the live members are the
  keys Redis holds. A node renews every third of that period.
- **Owners.** A stream's owner is the live member with the highest rendezvous weight
  (`owner_of`): every node computes the same answer from the same member set, and when a
  member comes or goes only the streams it wins or held move. The owner confirms it with
  a lease (`SET NX PX`, renewed like the membership): a node relays a stream only while it
  holds its lease, so two nodes never relay one stream at once, however the member sets
  they saw differ for a moment. A node that sees another member win a stream it holds
  stops its relay and releases the lease; the winner takes it at its next round.
- **Changes.** The streams service calls this node's `RelayControl` (create, change,
  disable, delete, stricter access); the change is published on a Redis channel, and
  every node applies it to what it relays within a round trip. A reconcile from PostgreSQL
  every few rounds is the safety net for a lost message.
- **Handover.** On SIGTERM (`leave`) the node withdraws from the member set, stops its
  relays, releases its leases and says so on the channel: the next owners take over at
  once. On a crash its leases expire and they take over within a lease period and a round.
- **Continuity.** The owner records where each live playlist stands (`RedisPositions`)
  before publishing a segment; the next owner carries the playlist on from there.

If Redis is unreachable a node keeps relaying what it relays (MP3 fan-out needs nothing
shared) and counts the failed renewals; it starts nothing new until Redis answers. When
Redis comes back empty (restarted), holders take their leases again first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from hls.live import HlsPosition
from hls.playlist import MediaPlaylist, segment_of, segment_record
from hls.window import WindowEntry
from relay.manager import Relay, RelayManager
from relay.sessions import HlsSessions
from relay.status import RelaySnapshot, StreamSource

log = logging.getLogger(__name__)

PREFIX = "ms:cluster:"
CHANNEL = f"{PREFIX}streams"
#: How long a live playlist's position outlives its last segment.
POSITION_TTL_SECONDS = 7 * 86_400
#: Rounds between two reconciles of the streams to relay from PostgreSQL.
RECONCILE_ROUNDS = 6

# Renew the lease when it is ours; take it when it is free (Redis restarted, expired
# between two rounds). 1: renewed, 2: taken again, 0: another node holds it.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""
# Delete the lease only when it is still ours.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Member:
    """A node as the others see it."""

    name: str
    internal_url: str
    public_url: str


def weight(node: str, stream_id: uuid.UUID) -> int:
    """The rendezvous (highest-random-weight) score of `node` for `stream_id`."""
    digest = hashlib.blake2b(f"{node}\0{stream_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(stream_id: uuid.UUID, nodes: Iterable[str]) -> str | None:
    """The node that should relay `stream_id` among `nodes` (None when there are none)."""
    return max(nodes, key=lambda node: (weight(node, stream_id), node), default=None)


class Cluster(Protocol):
    """What the listener routes ask: where a stream is served."""

    node_name: str

    def elsewhere(self, stream_id: uuid.UUID) -> str | None:
        """The public URL of the node that serves the stream when it is not this one."""
        ...

    def relay_here(self, stream_id: uuid.UUID) -> Relay | None:
        """This node's relay of the stream when the stream is served here (not
        `elsewhere`) and its relay has started (no waiting)."""
        ...

    async def local_relay(self, stream_id: uuid.UUID) -> Relay | None:
        """This node's relay of the stream, held up to `RELAY_CONNECT_WAIT_SECONDS` while
        it is starting."""
        ...

    async def claim(self, source: StreamSource) -> None:
        """A push stream's encoder connected to this node: it relays the stream now."""
        ...

    async def set_title(self, stream_id: uuid.UUID, title: str) -> bool:
        """Pass a push stream's now-playing title to the node relaying it (False: none)."""
        ...

    async def shared_playlist(self, stream_id: uuid.UUID) -> MediaPlaylist | None:
        """Another node's live playlist of the stream, segment URIs `hls/<n>.ts`, when it
        is current (None: redirect the player instead)."""
        ...

    async def shared_segment(self, stream_id: uuid.UUID, sequence: int) -> bytes | None:
        """A live segment another node published (None: redirect the player instead)."""
        ...

    def note_hls_player(self, stream_id: uuid.UUID, player: tuple[str | None, str]) -> None:
        """A player polled the shared playlist of a stream another node relays: counted
        there (`mediaserver_*` listener figures are cluster-wide)."""
        ...


class LocalCluster:
    """A node alone: it relays every enabled stream. The relay manager is its
    `RelayControl`."""

    def __init__(self, node_name: str, manager: RelayManager, wait_seconds: float) -> None:
        self.node_name = node_name
        self._manager = manager
        self._wait = wait_seconds
        #: Every stream is served here (the manager's method itself: one call per media GET).
        self.relay_here = manager.ready_relay

    def elsewhere(self, stream_id: uuid.UUID) -> str | None:
        return None

    async def local_relay(self, stream_id: uuid.UUID) -> Relay | None:
        return await self._manager.wait_relay(stream_id, self._wait)

    async def claim(self, source: StreamSource) -> None:
        return None

    async def set_title(self, stream_id: uuid.UUID, title: str) -> bool:
        return _title_to(self._manager.relay(stream_id), title)

    async def shared_playlist(self, stream_id: uuid.UUID) -> MediaPlaylist | None:
        return None

    async def shared_segment(self, stream_id: uuid.UUID, sequence: int) -> bytes | None:
        return None

    def note_hls_player(self, stream_id: uuid.UUID, player: tuple[str | None, str]) -> None:
        return None


class StreamsSource(Protocol):
    """What the cluster reads from the streams service."""

    async def enabled_sources(self) -> list[StreamSource]: ...

    async def source_for(self, stream_id: uuid.UUID) -> StreamSource | None: ...

    def forget(self, stream_id: uuid.UUID) -> None: ...


class RedisPositions:
    """`relay.manager.HlsPositions` in Redis: where each live playlist stands, and its
    newest segments (bytes and tags), written by the owner before it publishes one. The
    next owner carries the playlist on from them (`HlsPosition.recent`: no hole, one
    discontinuity), and every other node serves the stream's live HLS from them
    (`shared_window`, `shared_segment`), so a player stays with the node it entered by."""

    def __init__(self, redis: aioredis.Redis, *, keep: int = 6, segment_ttl: int = 180) -> None:
        self._redis = redis
        self._keep = keep  # segments listed (a live window's worth)
        self._ttl = segment_ttl  # seconds a segment's bytes stay

    async def load(self, stream_id: uuid.UUID) -> HlsPosition | None:
        try:
            raw = await self._redis.get(f"{PREFIX}hls:{stream_id}")
            if raw is None:
                return None
            sequence, discontinuities = (int(part) for part in _text(raw).split())
            recent = await self._recent(stream_id, sequence, payloads=True)
        except (RedisError, OSError, ValueError):
            log.warning("live playlist position unavailable", extra={"stream_id": str(stream_id)})
            return None
        return HlsPosition(sequence, discontinuities, recent)

    async def save(self, stream_id: uuid.UUID, position: HlsPosition, entry: WindowEntry) -> None:
        meta = json.dumps(segment_record(entry.segment))
        value = f"{position.next_sequence} {position.discontinuities}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{PREFIX}hls:{stream_id}:ts:{entry.sequence}", entry.payload, ex=self._ttl)
            pipe.set(f"{PREFIX}hls:{stream_id}:tags:{entry.sequence}", meta, ex=self._ttl)
            pipe.set(f"{PREFIX}hls:{stream_id}", value, ex=POSITION_TTL_SECONDS)
            await pipe.execute()

    async def _recent(
        self, stream_id: uuid.UUID, next_sequence: int, *, payloads: bool
    ) -> tuple[WindowEntry, ...]:
        """The newest consecutive segments before `next_sequence` still in Redis (their
        bytes empty unless `payloads`)."""
        sequences = list(range(max(0, next_sequence - self._keep), next_sequence))
        if not sequences:
            return ()
        kinds = ("tags", "ts") if payloads else ("tags",)
        keys = [f"{PREFIX}hls:{stream_id}:{kind}:{n}" for n in sequences for kind in kinds]
        values = await self._redis.mget(keys)
        entries: list[WindowEntry] = []
        for index, sequence in enumerate(sequences):
            tags = values[len(kinds) * index]
            payload = values[len(kinds) * index + 1] if payloads else b""
            if tags is None or payload is None:
                entries.clear()  # a gap: only what follows it is consecutive
                continue
            entries.append(WindowEntry(sequence, segment_of(json.loads(tags)), _bytes(payload)))
        return tuple(entries)

    async def shared_window(self, stream_id: uuid.UUID) -> HlsPosition | None:
        """The stream's live playlist as its owner published it, segments without their
        bytes (None: none yet)."""
        raw = await self._redis.get(f"{PREFIX}hls:{stream_id}")
        if raw is None:
            return None
        sequence, discontinuities = (int(part) for part in _text(raw).split())
        recent = await self._recent(stream_id, sequence, payloads=False)
        return HlsPosition(sequence, discontinuities, recent)

    async def shared_segment(self, stream_id: uuid.UUID, sequence: int) -> bytes | None:
        raw = await self._redis.get(f"{PREFIX}hls:{stream_id}:ts:{sequence}")
        return _bytes(raw) if raw is not None else None


@dataclass(slots=True)
class ClusterStats:
    takeovers: int = 0  # leases taken of streams another node relayed last
    renew_failures: int = 0  # renewals that failed (Redis unreachable) or found the lease lost
    handovers: int = 0  # streams given up to another member


class RedisCluster:
    """This node's part in a cluster of nodes sharing one Redis (module docstring). It is
    the `RelayControl` of the streams service: changes go through it to their owner."""

    def __init__(
        self,
        redis: aioredis.Redis,
        manager: RelayManager,
        me: Member,
        *,
        lease_seconds: float,
        wait_seconds: float,
        positions: RedisPositions | None = None,
        target_duration: int = 6,
    ) -> None:
        self.node_name = me.name
        self._positions = positions
        self._target = target_duration
        #: stream → (monotonic expiry, playlist): one Redis read per stream per half second
        #: however many players poll through this node.
        self._playlists: dict[uuid.UUID, tuple[float, MediaPlaylist | None]] = {}
        self._segments: collections.OrderedDict[tuple[uuid.UUID, int], bytes] = (
            collections.OrderedDict()
        )
        #: Players this node serves the shared playlists of other nodes' streams to.
        self._players: dict[uuid.UUID, HlsSessions] = {}
        self.me = me
        #: What this process writes into its leases and messages: its name plus a random
        #: instance id, so that a pod restarted under its name waits for its dead
        #: predecessor's leases to expire, and two processes given one NODE_NAME by mistake
        #: still never relay one stream twice.
        self.instance = f"{me.name}/{secrets.token_hex(4)}"
        self._redis = redis
        self._manager = manager
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._round_seconds = lease_seconds / 3
        self._wait = wait_seconds
        self._streams: StreamsSource | None = None
        #: Enabled streams (the reconcile and the change messages keep it current).
        self._sources: dict[uuid.UUID, StreamSource] = {}
        self._members: dict[str, Member] = {me.name: me}
        #: Lease holder of each known stream as last read (None: free).
        self._holders: dict[uuid.UUID, str | None] = {}
        self._held: set[uuid.UUID] = set()
        self.stats = ClusterStats()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._leaving = False
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._redis_down_since: float | None = None
        self._announced = False
        self._quiet_until = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, streams: StreamsSource) -> None:
        """Join: announce this node, listen for changes, and take the streams it wins."""
        self._streams = streams
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        await self._reconcile()
        await self._round()
        self._tasks = [
            asyncio.create_task(self._rounds(), name="cluster-rounds"),
            asyncio.create_task(self._listen(pubsub), name="cluster-changes"),
        ]
        log.info(
            "joined the cluster",
            extra={"node": self.node_name, "members": sorted(self._members)},
        )

    async def leave(self, _app: web.Application | None = None) -> None:
        """Graceful stop (aiohttp `on_shutdown`): leave the member set, stop the relays,
        release their leases and tell the others, who take the streams over at once."""
        if self._leaving:
            return
        self._leaving = True
        async with self._lock:
            held = list(self._held)
            await asyncio.gather(*(self._manager.stop(stream_id) for stream_id in held))
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(f"{PREFIX}member:{self.node_name}")
                await self._release_all(held)
                await self._publish("left", None)
            self._held.clear()
        log.info("left the cluster", extra={"node": self.node_name, "handed_over": len(held)})

    async def close(self) -> None:
        await self.leave()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- RelayControl ----------------------------------------------------------------------

    async def ensure(self, source: StreamSource) -> None:
        await self._apply("changed", source.stream_id, source)
        await self._publish("changed", source.stream_id)

    async def stop(self, stream_id: uuid.UUID) -> None:
        await self._apply("stopped", stream_id, None)
        await self._publish("stopped", stream_id)

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        await self._apply("disconnect", stream_id, None)
        await self._publish("disconnect", stream_id)

    def snapshot(self, stream_id: uuid.UUID) -> RelaySnapshot | None:
        return self._manager.snapshot(stream_id)

    # -- the listener routes ---------------------------------------------------------------

    def elsewhere(self, stream_id: uuid.UUID) -> str | None:
        if stream_id in self._held:
            return None
        members = self._members
        if self._leaving:  # a request that arrived as SIGTERM did: to whoever takes over
            members = {name: m for name, m in members.items() if name != self.node_name}
        holder = self._holders.get(stream_id)
        source = self._sources.get(stream_id)
        if source is not None and source.pushed and holder is None:
            return None  # no encoder anywhere: not live, here as elsewhere
        if holder is None or holder not in members:
            holder = owner_of(stream_id, members)  # it is taking the stream now
        if holder is None or holder == self.node_name:
            return None
        return members[holder].public_url

    def relay_here(self, stream_id: uuid.UUID) -> Relay | None:
        if self.elsewhere(stream_id) is not None:
            return None
        return self._manager.ready_relay(stream_id)

    async def local_relay(self, stream_id: uuid.UUID) -> Relay | None:
        return await self._manager.wait_relay(stream_id, self._wait)

    async def shared_playlist(self, stream_id: uuid.UUID) -> MediaPlaylist | None:
        now = time.monotonic()
        cached = self._playlists.get(stream_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        playlist = None
        if self._positions is not None:
            try:
                window = await self._positions.shared_window(stream_id)
            except (RedisError, OSError, ValueError):
                window = None
            playlist = self._current(window)
        if len(self._playlists) > 10_000:
            self._playlists.clear()
        self._playlists[stream_id] = (now + 0.5, playlist)
        return playlist

    def _current(self, window: HlsPosition | None) -> MediaPlaylist | None:
        """The playlist of `window` unless its newest segment is older than three target
        durations (the owner is gone or its source is down: players are better redirected
        to whoever relays it next)."""
        if window is None or not window.recent:
            return None
        newest = window.recent[-1].segment
        started = newest.program_date_time
        if started is None:
            return None
        age = (datetime.now(UTC) - started).total_seconds() - newest.duration
        if age > 3 * self._target:
            return None
        carried = sum(entry.segment.discontinuity for entry in window.recent)
        return MediaPlaylist(
            target_duration=self._target,
            media_sequence=window.recent[0].sequence,
            segments=tuple(replace(e.segment, uri=f"hls/{e.sequence}.ts") for e in window.recent),
            discontinuity_sequence=window.discontinuities - carried,
        )

    async def shared_segment(self, stream_id: uuid.UUID, sequence: int) -> bytes | None:
        key = (stream_id, sequence)
        payload = self._segments.get(key)
        if payload is not None:
            self._segments.move_to_end(key)
            return payload
        if self._positions is None:
            return None
        try:
            payload = await self._positions.shared_segment(stream_id, sequence)
        except (RedisError, OSError):
            return None
        if payload is not None:
            self._segments[key] = payload  # immutable under its number
            while len(self._segments) > 256:
                self._segments.popitem(last=False)
        return payload

    def note_hls_player(self, stream_id: uuid.UUID, player: tuple[str | None, str]) -> None:
        sessions = self._players.get(stream_id)
        if sessions is None:
            sessions = self._players[stream_id] = HlsSessions(2 * self._target)
        sessions.note(player, time.monotonic())

    async def _count_players(self) -> None:
        """Report the players this node serves other nodes' streams to, and add up those
        other nodes report for the streams this node relays (one round trip each way)."""
        now, ttl = time.monotonic(), 3 * self._lease_ms
        counts = {s: sessions.count(now) for s, sessions in self._players.items()}
        self._players = {s: self._players[s] for s, n in counts.items() if n}
        held = sorted(self._held)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id, count in counts.items():
                key = f"{PREFIX}players:{stream_id}"
                pipe.hset(key, self.node_name, count)
                pipe.pexpire(key, ttl)
            for stream_id in held:
                pipe.hgetall(f"{PREFIX}players:{stream_id}")
            results = await pipe.execute()
        for stream_id, reported in zip(held, results[2 * len(counts) :], strict=True):
            relay = self._manager.relay(stream_id)
            if relay is not None:
                others = {
                    _text(k): int(v) for k, v in reported.items() if _text(k) != self.node_name
                }
                relay.remote_listeners = sum(others.values())

    async def claim(self, source: StreamSource) -> None:
        """Push wins over hashing: take the lease whoever held it (that node stops its relay
        when told, or when its renewal finds the lease gone), and relay the stream here."""
        stream_id = source.stream_id
        async with self._lock:
            await self._redis.set(f"{PREFIX}lease:{stream_id}", self.instance, px=self._lease_ms)
            self._sources[stream_id] = source
            if stream_id not in self._held:
                self._held.add(stream_id)
                await self._record_owner(stream_id)
            self._holders[stream_id] = self.node_name
        await self._publish("claimed", stream_id)

    async def set_title(self, stream_id: uuid.UUID, title: str) -> bool:
        if stream_id in self._held:
            return _title_to(self._manager.relay(stream_id), title)
        if self._holders.get(stream_id) is None:
            return False
        await self._publish("title", stream_id, title)
        return True

    # -- what Prometheus and the health route read ----------------------------------------

    @property
    def members(self) -> list[Member]:
        return sorted(self._members.values(), key=lambda member: member.name)

    @property
    def owned(self) -> int:
        return len(self._held)

    def owner(self, stream_id: uuid.UUID) -> str | None:
        """The lease holder last seen (this node's own leases are exact)."""
        return self.node_name if stream_id in self._held else self._holders.get(stream_id)

    # -- rounds ----------------------------------------------------------------------------

    async def _rounds(self) -> None:
        count = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._round_seconds):
                    await self._wake.wait()
            self._wake.clear()
            count += 1
            try:
                if count % RECONCILE_ROUNDS == 0:
                    await self._reconcile()
                await self._round()
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
            except Exception:  # a bug in one round must not end the cluster membership
                log.exception("cluster round failed")

    def _redis_failed(self, exc: BaseException) -> None:
        self.stats.renew_failures += len(self._held)
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            log.warning(
                "Redis unreachable: keeping the relays this node has, starting none",
                extra={"error": str(exc) or type(exc).__name__, "held": len(self._held)},
            )

    async def _reconcile(self) -> None:
        """The streams to relay, from PostgreSQL: the safety net for a lost message."""
        assert self._streams is not None
        sources = await self._streams.enabled_sources()
        async with self._lock:
            self._sources = {source.stream_id: source for source in sources}

    async def _round(self) -> None:
        """Renew this node's membership and leases, read the members and the holders, then
        take the streams this node wins and hand over those it no longer wins."""
        async with self._lock:
            if self._leaving:
                return
            await self._announce()
            self._members = await self._read_members()
            streams = list(self._sources.keys() | self._held)
            holders = (
                await self._redis.mget([f"{PREFIX}lease:{s}" for s in streams]) if streams else []
            )
            self._holders = {
                stream_id: _text(raw).split("/", 1)[0] if raw is not None else None
                for stream_id, raw in zip(streams, holders, strict=True)
            }
            if self._redis_down_since is not None:
                log.info("Redis reachable again", extra={"held": len(self._held)})
                self._redis_down_since = None
            await self._renew_held()
            for stream_id in streams:
                await self._settle(stream_id)
            await self._count_players()

    async def _announce(self) -> None:
        """Renew this node's membership. When it had vanished (Redis restarted empty, or
        this node stalled past its lease), the other members' keys and leases may have
        vanished too: for a round and a half, only re-take what this node holds, so that
        every holder renews before anyone takes a stream that merely looks free."""
        previous = await self._redis.set(
            f"{PREFIX}member:{self.node_name}",
            json.dumps(asdict(self.me)),
            px=self._lease_ms,
            get=True,
        )
        loop = asyncio.get_running_loop()
        if previous is None and self._announced:
            log.warning("cluster membership was lost (Redis restarted?): re-taking leases first")
            self._quiet_until = loop.time() + 1.5 * self._round_seconds
        self._announced = True

    async def _read_members(self) -> dict[str, Member]:
        keys = [key async for key in self._redis.scan_iter(match=f"{PREFIX}member:*", count=100)]
        values = await self._redis.mget(keys) if keys else []
        members = {self.node_name: self.me}
        for raw in values:
            if raw is None:
                continue  # expired between the scan and the read
            with contextlib.suppress(ValueError, TypeError):
                member = Member(**json.loads(raw))
                members[member.name] = member
        return members

    async def _renew_held(self) -> None:
        """Renew every lease this node holds in one round trip; stop the relays whose
        lease another node took meanwhile (this node was cut off longer than a lease)."""
        held = sorted(self._held)
        if not held:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id in held:
                await self._renew(
                    keys=[f"{PREFIX}lease:{stream_id}"],
                    args=[self.instance, self._lease_ms],
                    client=pipe,
                )
            outcomes = await pipe.execute()
        for stream_id, outcome in zip(held, outcomes, strict=True):
            if outcome:
                self._holders[stream_id] = self.node_name
                continue
            self.stats.renew_failures += 1
            log.warning("lease lost to another node", extra={"stream_id": str(stream_id)})
            self._held.discard(stream_id)
            await self._manager.stop(stream_id)

    async def _settle(self, stream_id: uuid.UUID) -> None:
        source = self._sources.get(stream_id)
        if source is not None and source.pushed:
            return  # relayed where its encoder connects (`claim`), never by the hash
        wanted = source is not None and owner_of(stream_id, self._members) == self.node_name
        if stream_id in self._held:
            if not wanted:
                await self._give_up(stream_id, handover=source is not None)
            return
        if not wanted or self._holders.get(stream_id) is not None:
            return  # another node's, or its holder has not handed it over yet
        if asyncio.get_running_loop().time() < self._quiet_until:
            return  # its holder may not have re-taken it yet (`_announce`)
        assert source is not None
        taken = await self._redis.set(
            f"{PREFIX}lease:{stream_id}", self.instance, nx=True, px=self._lease_ms
        )
        if not taken:
            return
        self._held.add(stream_id)
        self._holders[stream_id] = self.node_name
        await self._record_owner(stream_id)
        await self._manager.ensure(source)

    async def _record_owner(self, stream_id: uuid.UUID) -> None:
        raw = await self._redis.set(f"{PREFIX}owner:{stream_id}", self.instance, get=True)
        previous = _text(raw) if isinstance(raw, (bytes, str)) else None
        if previous is not None and previous != self.instance:
            self.stats.takeovers += 1
            log.info("stream taken over", extra={"stream_id": str(stream_id), "from": previous})

    async def _give_up(self, stream_id: uuid.UUID, *, handover: bool) -> None:
        self._held.discard(stream_id)
        await self._manager.stop(stream_id)
        await self._release_all([stream_id])
        self._holders[stream_id] = None
        if handover:
            self.stats.handovers += 1
            log.info("stream handed over", extra={"stream_id": str(stream_id)})
            await self._publish("released", stream_id)

    async def _release_all(self, stream_ids: Sequence[uuid.UUID]) -> None:
        for stream_id in stream_ids:
            await self._release(keys=[f"{PREFIX}lease:{stream_id}"], args=[self.instance])

    # -- changes ---------------------------------------------------------------------------

    async def _publish(self, op: str, stream_id: uuid.UUID | None, title: str = "") -> None:
        message = {
            "node": self.instance,
            "op": op,
            "stream_id": str(stream_id or ""),
            "title": title,
        }
        try:
            await self._redis.publish(CHANNEL, json.dumps(message))
        except (RedisError, OSError) as exc:  # the reconcile will catch the owner up
            self._redis_failed(exc)

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        await self._on_message(message)
                except (RedisError, OSError) as exc:
                    self._redis_failed(exc)
                    await asyncio.sleep(self._round_seconds)
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.subscribe(CHANNEL)  # reconnects
                    await self._reconcile_quietly()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _reconcile_quietly(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._reconcile()
        self._wake.set()

    async def _on_message(self, message: dict[str, Any]) -> None:
        try:
            body = json.loads(message["data"])
            node, op = str(body["node"]), str(body["op"])
            stream_id = uuid.UUID(body["stream_id"]) if body["stream_id"] else None
            title = str(body.get("title", ""))
        except (ValueError, KeyError, TypeError):
            log.warning("malformed cluster message ignored")
            return
        if node == self.instance:
            return
        if stream_id is None or op == "released":
            self._wake.set()  # a member left or handed a stream over: take what it had now
            return
        if op == "title":
            if stream_id in self._held:
                _title_to(self._manager.relay(stream_id), title)
            return
        try:
            source = None
            if op == "changed":
                assert self._streams is not None
                source = await self._streams.source_for(stream_id)
                if source is None:  # disabled or deleted since
                    op = "stopped"
            await self._apply(op, stream_id, source)
        except Exception:  # the reconcile catches up on what a failed message missed
            log.exception("cluster change failed", extra={"stream_id": str(stream_id)})

    async def _apply(self, op: str, stream_id: uuid.UUID, source: StreamSource | None) -> None:
        """Apply a change to this node: forget the cached row, update the streams to relay,
        and reconfigure, stop or cut the listeners of the relay when this node holds it."""
        if self._streams is not None:
            self._streams.forget(stream_id)
        async with self._lock:
            if op == "changed" and source is not None:
                self._sources[stream_id] = source
                if stream_id in self._held:
                    await self._manager.ensure(source)
            elif op == "stopped":
                self._sources.pop(stream_id, None)
                if stream_id in self._held:
                    await self._give_up(stream_id, handover=False)
            elif op == "disconnect":
                await self._manager.disconnect_listeners(stream_id)
            elif op == "claimed" and stream_id in self._held:
                # Another node's encoder connection won the stream: its lease, not ours.
                self._held.discard(stream_id)
                self._holders[stream_id] = None
                await self._manager.stop(stream_id)
        self._wake.set()  # a new stream is taken by its owner at once


def _title_to(relay: Relay | None, title: str) -> bool:
    """Give a push stream's relay the title its encoder sent beside the audio."""
    if relay is None:
        return False
    relay.on_metadata({"StreamTitle": title})
    return True


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ClusterCollector(Collector):
    """`mediaserver_cluster_*`: what this node sees of the cluster and does in it."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster

    def collect(self) -> Iterator[Metric]:
        cluster, stats = self._cluster, self._cluster.stats
        yield GaugeMetricFamily(
            "mediaserver_cluster_members", "Live members this node sees.", len(cluster.members)
        )
        yield GaugeMetricFamily(
            "mediaserver_cluster_streams_owned",
            "Streams whose lease this node holds (it relays them).",
            cluster.owned,
        )
        yield CounterMetricFamily(
            "mediaserver_cluster_takeovers",
            "Streams this node took over from another node (crash or handover).",
            stats.takeovers,
        )
        yield CounterMetricFamily(
            "mediaserver_cluster_lease_renew_failures",
            "Lease renewals that failed (Redis unreachable) or found the lease lost.",
            stats.renew_failures,
        )
        yield CounterMetricFamily(
            "mediaserver_cluster_handovers",
            "Streams this node handed to a member that now wins them.",
            stats.handovers,
        )


CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
