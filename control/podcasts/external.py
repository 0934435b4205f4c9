"""Checking an external episode's media URL (backlog US-4.3): it must answer `HEAD` with
200 and `audio/mpeg`, from a public address (`control.urlguard`), within a bounded time,
and tell its size — `Content-Length`, else the total of `Content-Range` in the answer to
`GET` with `Range: bytes=0-0` — because the feed's `<enclosure length>` is that size."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from control.urlguard import UrlGuard
from mediaserver.errors import InvalidInput, Unprocessable

USER_AGENT = "Mozilla/5.0 (compatible; mediaserver podcast media check)"
_TOTAL = re.compile(r"^bytes\s+(?:\d+-\d+|\*)/(\d+)$")


@dataclass(frozen=True, slots=True)
class ExternalMedia:
    url: str
    size_bytes: int


class ExternalMediaProbe:
    """Checks external media URLs with one guarded client session (closed by `close`)."""

    def __init__(self, guard: UrlGuard, timeout_seconds: float = 10.0) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def check(self, url: str) -> ExternalMedia:
        """The media's size; 422 when it is unreachable, refused or not MP3, 400 when it
        does not tell its size."""
        try:
            size = await self._size(url)
        except (aiohttp.ClientError, TimeoutError, OSError):
            raise Unprocessable(
                "The media URL could not be reached (connection failed or timed out)"
            ) from None
        if size is None:
            raise InvalidInput(
                "The media URL does not tell its size (no Content-Length, and no "
                "Content-Range for a byte range); the feed's enclosure needs it"
            )
        return ExternalMedia(url, size)

    async def _size(self, url: str) -> int | None:
        http = self._session()
        headers = {"User-Agent": USER_AGENT}
        async with await self._guard.request(http, "HEAD", url, headers) as response:
            if response.status != 200:
                raise Unprocessable(
                    f"The media URL answered HEAD with HTTP {response.status}; it must answer 200"
                )
            if response.content_type != "audio/mpeg":
                served = response.headers.get("Content-Type") or "no Content-Type"
                raise Unprocessable(
                    f"The media URL serves {served}; episodes must be audio/mpeg (MP3)"
                )
            length = _int(response.headers.get("Content-Length"))
        if length is not None:
            return length
        ranged = {**headers, "Range": "bytes=0-0"}
        async with await self._guard.request(http, "GET", url, ranged) as response:
            if response.status == 206:
                match = _TOTAL.match(response.headers.get("Content-Range", "").strip())
                return int(match.group(1)) if match else None
            if response.status == 200:
                return _int(response.headers.get("Content-Length"))
        return None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = self._guard.session(self._timeout)
        return self._http


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None
