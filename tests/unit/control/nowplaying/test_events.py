"""The live feeds' fan-out in one process: who gets which event, and a client that does
not read is ended at its queue's bound instead of buffering without limit."""

from __future__ import annotations

import uuid

from control.nowplaying.events import QUEUE_SIZE, Event, EventBus


def event(stream_id: uuid.UUID, public: bool = True, n: int = 0) -> Event:
    return Event("listeners", stream_id, public, {"stream_id": str(stream_id), "listeners": n})


async def test_each_feed_gets_its_events_and_a_stalled_one_is_ended():
    bus = EventBus(None)
    mine, other = uuid.uuid4(), uuid.uuid4()
    every, one, stalled = bus.subscribe(), bus.subscribe(mine), bus.subscribe()

    await bus.publish(event(other))
    await bus.publish(event(mine, public=False))  # a private stream: its own feed only
    assert (await every.next(0.1)).stream_id == other
    assert await every.next(0.01) is None and not every.ended  # nothing more: a keepalive
    assert (await one.next(0.1)).stream_id == mine

    for n in range(QUEUE_SIZE - 1):  # `stalled` holds the first one too: now it is full
        await bus.publish(event(other, n=n))
        assert (await every.next(0.1)).data["listeners"] == n
    assert not stalled.ended
    await bus.publish(event(other))  # one more than it may hold: ended, not grown
    assert stalled.ended and not every.ended

    bus.end_all()  # shutdown
    assert every.ended and one.ended
    await bus.close()


def test_events_cross_redis_as_json():
    sent = event(uuid.uuid4(), public=False, n=7)
    assert Event.decode(sent.encode()) == sent
