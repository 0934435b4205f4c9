"""HLS sessions of a live stream: the distinct players (address and `User-Agent`) that
fetched its playlist lately, counted as listeners beside the MP3 connections.

Players poll the playlist about once per target duration, so a player is "listening" while
it polled within the last few. Sessions are kept in two generations of one `span` each: a
poll goes into the current one, and every `span` the current one becomes the previous and a
new one starts. The count is the players of both, i.e. those seen within the last one to two
spans. A poll costs one set insertion (no per-poll timestamps to prune), and each generation
holds at most `limit` players, so a client that varies its headers on every request cannot
grow the node's memory: the count saturates instead. Time comes in as an argument."""

from __future__ import annotations

from collections.abc import Hashable

#: Players kept per generation.
DEFAULT_LIMIT = 100_000


class HlsSessions:
    """Distinct players seen within the last one to two `span`s (module doc)."""

    def __init__(self, span: float, limit: int = DEFAULT_LIMIT) -> None:
        self._span = span
        self._limit = limit
        #: Players by their hash: an int is all a player leaves in memory (not its tuple and
        #: `User-Agent` string), and two players whose hashes collide (one in 2**64) are
        #: counted once.
        self._current: set[int] = set()
        self._previous: set[int] = set()
        self._started: float | None = None

    def note(self, player: Hashable, now: float) -> None:
        """`player` fetched the playlist at `now`."""
        if self._started is None or now - self._started >= self._span:
            self._rotate(now)
        if len(self._current) < self._limit:
            self._current.add(hash(player))

    def count(self, now: float) -> int:
        """Players seen within the last one to two spans."""
        if self._started is not None and now - self._started >= self._span:
            self._rotate(now)
        return len(self._current | self._previous)

    def clear(self) -> None:
        self._current.clear()
        self._previous.clear()
        self._started = None

    def _rotate(self, now: float) -> None:
        idle = self._started is None or now - self._started >= 2 * self._span
        self._previous = set() if idle else self._current  # nobody polled for a whole span
        self._current = set()
        self._started = now
