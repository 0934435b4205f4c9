"""Checking an external episode's media URL (backlog US-4.3): it must answer `HEAD` with
200 and `audio/mpeg`, from a public address (`control.urlguard`), within a bounded time,
and tell its size — `Content-Length`, else the total of `Content-Range` in the answer to a
ranged `GET` — because the feed's `<enclosure length>` is that size (422 otherwise).

Unless the DJ states the duration, the same guarded client fetches the first 64 KiB
(`Range: bytes=0-65535`, and once more past an ID3v2 tag longer than that) and
`control.podcasts.duration` estimates it, for the feed's `itunes:duration`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from control.podcasts.duration import WINDOW, estimate_duration, id3v2_end
from control.urlguard import UrlGuard
from mediaserver.errors import Unprocessable

USER_AGENT = "Mozilla/5.0 (compatible; mediaserver podcast media check)"
_TOTAL = re.compile(r"^bytes\s+(?:\d+-\d+|\*)/(\d+)$")
_MAX_SECONDS = 2_147_483_647


@dataclass(frozen=True, slots=True)
class ExternalMedia:
    url: str
    size_bytes: int
    #: Estimated from the first bytes; None when not asked for or not found.
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class _Sample:
    """The first bytes of a ranged (or whole, cut short) GET, and the size it told."""

    data: bytes
    total: int | None
    ranged: bool  # the server honoured `Range` (206)


class ExternalMediaProbe:
    """Checks external media URLs with one guarded client session (closed by `close`)."""

    def __init__(self, guard: UrlGuard, timeout_seconds: float = 10.0) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def check(self, url: str, *, want_duration: bool = True) -> ExternalMedia:
        """The media's size (and, with `want_duration`, its estimated duration); 422 when
        it is unreachable, refused, not MP3 or does not tell its size."""
        try:
            length = await self._head(url)
            sample = await self._sample(url, 0) if length is None or want_duration else None
            size = length if length is not None else sample.total if sample else None
            if size is None:
                raise Unprocessable(
                    "The media URL does not tell its size (no Content-Length, and no "
                    "Content-Range for a byte range); the feed's enclosure needs it"
                )
            seconds = await self._duration(url, size, sample) if want_duration else None
        except (aiohttp.ClientError, TimeoutError, OSError):
            raise Unprocessable(
                "The media URL could not be reached (connection failed or timed out)"
            ) from None
        return ExternalMedia(url, size, seconds)

    async def _head(self, url: str) -> int | None:
        """Check status and type; the Content-Length, if told."""
        headers = {"User-Agent": USER_AGENT}
        async with await self._guard.request(self._session(), "HEAD", url, headers) as response:
            if response.status != 200:
                raise Unprocessable(
                    f"The media URL answered HEAD with HTTP {response.status}; it must answer 200"
                )
            if response.content_type != "audio/mpeg":
                served = response.headers.get("Content-Type") or "no Content-Type"
                raise Unprocessable(
                    f"The media URL serves {served}; episodes must be audio/mpeg (MP3)"
                )
            return _int(response.headers.get("Content-Length"))

    async def _sample(self, url: str, start: int) -> _Sample | None:
        """Up to `WINDOW` bytes from `start`; None when the server answers neither 206 nor
        (for `start` 0) 200."""
        headers = {"User-Agent": USER_AGENT, "Range": f"bytes={start}-{start + WINDOW - 1}"}
        async with await self._guard.request(self._session(), "GET", url, headers) as response:
            if response.status == 206:
                match = _TOTAL.match(response.headers.get("Content-Range", "").strip())
                total = int(match.group(1)) if match else None
            elif response.status == 200 and start == 0:
                total = _int(response.headers.get("Content-Length"))
            else:
                return None
            data = bytearray()
            async for chunk in response.content.iter_chunked(WINDOW):
                data += chunk
                if len(data) >= WINDOW:
                    break  # a whole-file answer: leaving closes the connection
            return _Sample(bytes(data[:WINDOW]), total, response.status == 206)

    async def _duration(self, url: str, size: int, sample: _Sample | None) -> int | None:
        if sample is None:
            return None
        seconds = estimate_duration(sample.data, size)
        start = id3v2_end(sample.data)
        if seconds is None and sample.ranged and start is not None and WINDOW <= start < size:
            later = await self._sample(url, start)  # past a long tag (cover art)
            if later is not None and later.ranged:
                seconds = estimate_duration(later.data, size, start)
        if seconds is None:
            return None
        return min(round(seconds), _MAX_SECONDS)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = self._guard.session(self._timeout)
        return self._http


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
