"""A wall clock the test moves (`mediaserver.clock.Clock`): set `now`."""

from __future__ import annotations

from datetime import datetime


class Clock:
    """Answers `now` until the test sets another moment."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
