"""The last heartbeat of each stream's relay (backlog US-2.4): what the in-process relay
records every 30 s and external relays post. Redis when configured (shared by every node),
else in process (one node only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis.asyncio
    from redis.typing import EncodableT, FieldT

#: How long Redis keeps a stream's last heartbeat: a relay silent for a day is long gone.
TTL_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One sample of a relay's figures, stamped with the receiving node's clock."""

    at: datetime
    listeners: int
    uptime_seconds: int
    cpu_usage_percent: float | None = None
    memory_usage_bytes: int | None = None
    current_title: str | None = None
    bitrate_kbps: int | None = None
    node: str | None = None
    #: Most listeners at once since the source connected (the service keeps it).
    listener_peak: int | None = None


class HeartbeatStore(Protocol):
    async def record(self, stream_id: uuid.UUID, beat: Heartbeat) -> None:
        """Replace the stream's last heartbeat."""
        ...

    async def last(self, stream_id: uuid.UUID) -> Heartbeat | None:
        """The stream's last heartbeat, None when there is none (or it expired)."""
        ...

    async def last_many(self, stream_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Heartbeat]:
        """`last` of several streams in one round trip; streams without one are left out."""
        ...

    async def forget(self, stream_id: uuid.UUID) -> None:
        """Drop the stream's heartbeat (the stream was deleted)."""
        ...


class MemoryHeartbeatStore:
    """In-process store: one entry per stream, removed when the stream is deleted."""

    def __init__(self) -> None:
        self._beats: dict[uuid.UUID, Heartbeat] = {}

    async def record(self, stream_id: uuid.UUID, beat: Heartbeat) -> None:
        self._beats[stream_id] = beat

    async def last(self, stream_id: uuid.UUID) -> Heartbeat | None:
        return self._beats.get(stream_id)

    async def last_many(self, stream_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Heartbeat]:
        return {i: self._beats[i] for i in stream_ids if i in self._beats}

    async def forget(self, stream_id: uuid.UUID) -> None:
        self._beats.pop(stream_id, None)


class RedisHeartbeatStore:
    """One hash per stream (`<prefix><stream_id>`), rewritten whole by each heartbeat and
    expiring `TTL_SECONDS` after the last one."""

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "ms:heartbeat:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, stream_id: uuid.UUID) -> str:
        return f"{self._prefix}{stream_id}"

    async def record(self, stream_id: uuid.UUID, beat: Heartbeat) -> None:
        key = self._key(stream_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            # DEL first: a field that is None now must not survive from an earlier beat.
            pipe.delete(key)
            pipe.hset(key, mapping=_encode(beat))
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()

    async def last(self, stream_id: uuid.UUID) -> Heartbeat | None:
        return _decode(await self._redis.hgetall(self._key(stream_id)))

    async def last_many(self, stream_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Heartbeat]:
        ids = list(stream_ids)
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id in ids:
                pipe.hgetall(self._key(stream_id))
            hashes = await pipe.execute()
        beats = {i: _decode(h) for i, h in zip(ids, hashes, strict=True)}
        return {i: b for i, b in beats.items() if b is not None}

    async def forget(self, stream_id: uuid.UUID) -> None:
        await self._redis.delete(self._key(stream_id))


_FIELDS = {f.name: f for f in fields(Heartbeat)}
_INTS = ("listeners", "uptime_seconds", "memory_usage_bytes", "bitrate_kbps", "listener_peak")


def _encode(beat: Heartbeat) -> dict[FieldT, EncodableT]:
    values = asdict(beat)
    values["at"] = beat.at.isoformat()
    return {name: str(value) for name, value in values.items() if value is not None}


def _decode(raw: Mapping[Any, Any] | None) -> Heartbeat | None:
    if not raw:
        return None
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    values: dict[str, Any] = {k: v for k, v in text.items() if k in _FIELDS}
    try:
        values["at"] = datetime.fromisoformat(values["at"])
        for name in _INTS:
            if name in values:
                values[name] = int(values[name])
        if "cpu_usage_percent" in values:
            values["cpu_usage_percent"] = float(values["cpu_usage_percent"])
        return Heartbeat(**values)
    except (KeyError, TypeError, ValueError):
        return None  # written by an incompatible version: as good as no heartbeat
