"""Query and response bodies of the analytics routes (backlog US-5.3, US-5.4)."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from mediaserver.errors import InvalidInput

#: Both ends are included, so a leap year fits.
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    # pydantic alone would also take Unix timestamps ("1717200000") for a date.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date in YYYY-MM-DD format")
    return value


#: Days a report can be asked about: a range's defaults count back from `to` and its ends
#: forward (a day later), so the calendar's first and last days would overflow `date`.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(9999, 12, 1)


def _in_calendar(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be a date between {FIRST_DAY} and {LAST_DAY}")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_in_calendar)]


class DateRangeQuery(BaseModel):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD`, both inclusive and optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: IsoDate | None = Field(
        None, alias="from", description="First day (UTC), inclusive; default `to` − 29 days"
    )
    to: IsoDate | None = Field(
        None, alias="to", description="Last day (UTC), inclusive; default today"
    )

    def resolve(self, today: date) -> tuple[date, date]:
        """The (first, last) day asked for, defaults filled in from `today`; raises
        `InvalidInput` when the range is reversed or longer than `MAX_RANGE_DAYS`."""
        last = self.to or today
        first = self.from_ or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if first > last:
            raise InvalidInput(
                f"Query parameter 'from' ({first}) must be on or before 'to' ({last})."
            )
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise InvalidInput(f"The date range must not exceed {MAX_RANGE_DAYS} days.")
        return first, last


class DailyListeners(BaseModel):
    date: date
    listeners: int


class StreamAnalytics(BaseModel):
    stream_id: uuid.UUID
    daily_listeners: list[DailyListeners]
    peak_listeners: int
    total_listens: int


class DailyPlays(BaseModel):
    date: date
    play_count: int


class PlaylistAnalytics(BaseModel):
    playlist_id: uuid.UUID
    plays: list[DailyPlays]
    total_plays: int
