"""The live feeds' events: a title or listener-count change of a stream, fanned out to
every subscriber (a server-sent-events client) on every node.

A change happens on the node that relays the stream. With Redis it is published on the
`ms:nowplaying` channel and every node (this one included) hands it to its subscribers;
without Redis it goes straight to this node's subscribers. Each subscriber has a bounded
queue: one that falls `QUEUE_SIZE` events behind is ended (an `EventSource` reconnects and
starts again from a fresh snapshot) rather than buffering without bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)
CHANNEL = "ms:nowplaying"
#: Events a subscriber may have waiting; past it the subscriber is ended.
QUEUE_SIZE = 64
#: After losing Redis, listen again this often.
RETRY_SECONDS = 1.0

Kind = Literal["title", "listeners"]


@dataclass(frozen=True, slots=True)
class Event:
    """`data` is what the client receives (JSON); `public` says whether the all-stations
    feed carries it (a public, enabled stream), per-stream feeds carry their own."""

    kind: Kind
    stream_id: uuid.UUID
    public: bool
    data: dict[str, Any]

    def encode(self) -> str:
        body = {"kind": self.kind, "stream_id": str(self.stream_id), "public": self.public}
        return json.dumps({**body, "data": self.data})

    @classmethod
    def decode(cls, raw: str | bytes) -> Event:
        body = json.loads(raw)
        return cls(body["kind"], uuid.UUID(body["stream_id"]), bool(body["public"]), body["data"])


@dataclass(eq=False)
class Subscription:
    """One client's queue: every event (`stream_id` None) or one stream's."""

    stream_id: uuid.UUID | None
    size: int = QUEUE_SIZE
    ended: bool = False
    # One more slot than `size`: the end marker always fits.
    _queue: asyncio.Queue[Event | None] = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(self.size + 1)

    def offer(self, event: Event) -> None:
        if self.ended or not self._wants(event):
            return
        if self._queue.qsize() >= self.size:
            log.info("live feed client ended: too far behind")
            self.end()
            return
        self._queue.put_nowait(event)

    def _wants(self, event: Event) -> bool:
        return event.stream_id == self.stream_id if self.stream_id is not None else event.public

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def next(self, within: float) -> Event | None:
        """The next event; None when none came `within` seconds or the feed has ended
        (then `ended` is true)."""
        if self.ended and self._queue.empty():
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                return await self._queue.get()
        return None


class EventBus:
    """Publishes events through Redis (or in process) and hands them to subscribers."""

    def __init__(self, redis: redis.asyncio.Redis | None, channel: str = CHANNEL) -> None:
        self._redis = redis
        self._channel = channel
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis is not None:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self._channel)
            self._task = asyncio.create_task(self._listen(pubsub), name="nowplaying-events")

    async def close(self) -> None:
        self.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def end_all(self) -> None:
        """End every subscriber's feed (shutdown: their responses finish at once)."""
        for subscription in list(self._subscribers):
            subscription.end()

    def subscribe(self, stream_id: uuid.UUID | None = None) -> Subscription:
        subscription = Subscription(stream_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def publish(self, event: Event) -> None:
        if self._redis is None:
            self._deliver(event)
            return
        try:
            await self._redis.publish(self._channel, event.encode())
        except (RedisError, OSError) as exc:  # the feeds miss it; snapshots stay right
            log.warning("now-playing event not published: %s", exc)

    def _deliver(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        self._on_message(message)
                except (RedisError, OSError) as exc:
                    log.warning("now-playing events: Redis lost (%s), listening again", exc)
                    await asyncio.sleep(RETRY_SECONDS)
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.subscribe(self._channel)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _on_message(self, message: dict[str, Any]) -> None:
        try:
            event = Event.decode(message["data"])
        except (ValueError, KeyError, TypeError):
            log.warning("now-playing events: unreadable message ignored")
            return
        self._deliver(event)
