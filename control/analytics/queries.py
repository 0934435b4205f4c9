"""SQL of the daily analytics counters (backlog US-5.1 – US-5.4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class DailyValue:
    day: date
    value: int


# One statement, so concurrent increments of the same counter never lose an update: the
# loser of the insert race waits on the unique index and then adds to the winner's row.
INCREMENT = """
INSERT INTO analytics (resource_type, resource_id, date, metric, value)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (resource_type, resource_id, date, metric)
DO UPDATE SET value = analytics.value + EXCLUDED.value, updated_at = now()
"""
# Many counters in one statement (so all or none are added): the keys are distinct.
INCREMENT_MANY = """
INSERT INTO analytics (resource_type, resource_id, date, metric, value)
SELECT * FROM unnest($1::varchar[], $2::uuid[], $3::date[], $4::varchar[], $5::bigint[])
ON CONFLICT (resource_type, resource_id, date, metric)
DO UPDATE SET value = analytics.value + EXCLUDED.value, updated_at = now()
"""
SERIES = """
SELECT date, value FROM analytics
WHERE resource_type = $1 AND resource_id = $2 AND metric = $3 AND date BETWEEN $4 AND $5
ORDER BY date
"""


async def increment(
    conn: Executor, resource_type: str, resource_id: uuid.UUID, day: date, metric: str, value: int
) -> None:
    await conn.execute(INCREMENT, resource_type, resource_id, day, metric, value)


#: (resource_type, resource_id, day, metric) of one counter.
CounterKey = tuple[str, uuid.UUID, date, str]


async def increment_many(conn: Executor, amounts: dict[CounterKey, int]) -> None:
    """Add each amount to its counter, atomically."""
    keys = list(amounts)
    await conn.execute(
        INCREMENT_MANY,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[3] for k in keys],
        list(amounts.values()),
    )


async def series(
    conn: Executor,
    resource_type: str,
    resource_id: uuid.UUID,
    metric: str,
    first: date,
    last: date,
) -> list[DailyValue]:
    """The counter's value on each day of [first, last] that has one, by date."""
    records = await conn.fetch(SERIES, resource_type, resource_id, metric, first, last)
    return [DailyValue(r["date"], int(r["value"])) for r in records]
