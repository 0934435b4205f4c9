"""Checking a DJ's source server and stream key against its admin interface (backlog US-2.1),
and reading its now-playing figures later.

Detection, in this order, within one overall deadline:

1. Icecast 2: `GET /admin/stats` with HTTP Basic `admin:KEY` → `<icestats>`. A 401/403
   that names Icecast (`WWW-Authenticate` realm or `Server` header) is a wrong key.
2. SHOUTcast v2: `GET /admin.cgi?sid=N&mode=viewxml&pass=KEY` (N = the DJ's sid, default 1).
3. SHOUTcast v1: `GET /admin.cgi?mode=viewxml&pass=KEY`.
   Both answer `<SHOUTCASTSERVER>`; any 401/403 from `admin.cgi` is a wrong key.

Then the stream's type: as the admin answer names it (Icecast `server_type`, SHOUTcast
`CONTENT`), else by `GET <mount>` like a listener, for its `Content-Type` and first bytes. A
type the relay cannot carry (Ogg Vorbis/Opus, FLAC, ...: `relay.codec`) is refused with a
422 that names it, rather than accepted and left failing. A mount that is not on air, or a
server whose answer is not plain HTTP (SHOUTcast v1's `ICY 200 OK`), cannot be told: it is
accepted, and the relay refuses the type later (logged).

v1 or v2: the `<VERSION>` element decides when present (major version 1 → v1, else v2);
without it, the server is v2 when the `sid=` form is what answered and v1 otherwise (v1
servers ignore `sid`, so a v1 that reports no version answers the first form and is taken
for v2 — real v1 servers always send `<VERSION>`).

The stream key travels only in the requests to the DJ's server: it is never logged, and
error messages are built here rather than from aiohttp's (which quote the URL).

The node must not become a port scanner for any DJ account (issue 11): the source URL
passes the same guard as every other server-side fetch (`control/urlguard.py`: no private,
loopback or link-local address unless `ALLOW_PRIVATE_MEDIA_URLS`, checked on the address
each connection resolves to, so DNS rebinding cannot reach one; no redirects are followed),
and every failed check — refused address, nothing listening, no answer, a wrong key, not a
stream server — answers the same `PROBE_FAILED`; the reason goes to the log only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as ET
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from control.urlguard import UrlGuard, UrlRefused
from mediaserver.errors import Unprocessable
from relay.codec import codec_for, media_type, sniff, unsupported_type
from relay.source import USER_AGENT as RELAY_AGENT
from relay.status import ServerKind, StreamSource

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; mediaserver source check)"
MAX_BODY_BYTES = 1 << 20  # an Icecast with hundreds of mounts stays well below
#: The one answer to every failed source check (module doc: no network map).
PROBE_FAILED = (
    "The stream source could not be verified: check that the server URL is reachable from "
    "the internet, that it runs SHOUTcast or Icecast, and the mount and stream key"
)
#: Bytes of the stream read to tell its container when the content type does not (an
#: Ogg page is at most ~64 KiB, live streams' pages a few KiB).
SNIFF_BYTES = 16 * 1024
SNIFF_SECONDS = 2.0
#: The stream is asked for as the relay asks (SHOUTcast v1 answers browsers with a page).
_LISTENER_HEADERS = {"User-Agent": RELAY_AGENT, "Icy-MetaData": "0"}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the admin interface said. Figures are None when the server did not report them
    (e.g. the DJ is not broadcasting yet)."""

    kind: ServerKind
    sid: int | None  # SHOUTcast v2 stream id; None for the others
    title: str | None
    bitrate_kbps: int | None
    listeners: int | None
    #: The stream's type as the admin interface names it (Icecast `server_type`,
    #: SHOUTcast `CONTENT`), None when it does not (not on air). Not part of equality.
    content_type: str | None = field(default=None, compare=False)


Rejected = Literal["rejected"]
REJECTED: Rejected = "rejected"
Form = Literal["icecast", "sid", "plain"]
#: How a registered source of each kind is asked for its figures.
_FORMS: dict[ServerKind, Form] = {"icecast2": "icecast", "shoutcast2": "sid", "shoutcast1": "plain"}


class _Unreachable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes | None  # None: not read (audio, or over MAX_BODY_BYTES)


class SourceProbe:
    """Talks to SHOUTcast v1/v2 and Icecast 2 admin interfaces with bounded timeouts."""

    def __init__(self, guard: UrlGuard, timeout_seconds: float = 5.0) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def probe(
        self, source_url: str, key: str, mount: str, sid: int | None = None
    ) -> ProbeResult:
        """Detect the server kind and check the key; raises `Unprocessable` (422) with
        `PROBE_FAILED` whatever went wrong (the log says what)."""
        outcome: ProbeResult | Rejected | _Unreachable | None
        try:
            async with asyncio.timeout(self._timeout):
                await self._guard.check(source_url)
                outcome = await self._detect(source_url, key, mount, sid)
        except TimeoutError:
            outcome = _Unreachable(f"no answer within {self._timeout:g} s")
        except _Unreachable as exc:
            outcome = exc
        except UrlRefused as exc:
            outcome = _Unreachable(exc.message)
        if isinstance(outcome, _Unreachable):
            reason = f"cannot connect: {outcome.reason}"
        elif outcome == REJECTED:
            reason = "the source rejected the stream key"
        elif outcome is None:
            reason = "not a SHOUTcast or Icecast server"
        else:
            log.info("source checked", extra={"source_url": source_url, "kind": outcome.kind})
            refused = await self._stream_type_refusal(source_url, mount, outcome.content_type)
            if refused is not None:
                raise Unprocessable(refused)
            return outcome
        log.info("source check failed", extra={"source_url": source_url, "reason": reason})
        raise Unprocessable(PROBE_FAILED)

    async def _stream_type_refusal(
        self, source_url: str, mount: str, named: str | None
    ) -> str | None:
        """Why the stream at `mount` cannot be relayed (its type), or None when it can or
        cannot be told (not on air, not plain HTTP, no answer in time). The type the admin
        interface `named` is enough, without listening to the stream (which would count as
        a listener on the DJ's server)."""
        if named:
            return None if codec_for(named) else unsupported_type(named)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session().get(
                    source_url + mount, headers=_LISTENER_HEADERS, allow_redirects=False
                ) as response,
            ):
                if response.status != 200:
                    return None
                content_type = response.headers.get("Content-Type")
                first = await _first_bytes(response)
        except (TimeoutError, aiohttp.ClientError, UrlRefused, ValueError):
            return None
        kind = sniff(first) if codec_for(content_type) else media_type(content_type)
        if kind is None or kind.startswith("text/"):  # a page (SHOUTcast v1 to browsers)
            return None
        log.info("source stream refused", extra={"source_url": source_url, "type": kind})
        return unsupported_type(kind)

    async def fetch_stats(self, source: StreamSource, key: str) -> ProbeResult | None:
        """The now-playing figures of a registered source, asked the way its kind answers;
        None on any failure (this is polling: the caller tries again later)."""
        form = _FORMS[source.server_kind]
        try:
            async with asyncio.timeout(self._timeout):
                await self._guard.check(source.source_url)
                outcome = await self._ask(source.source_url, key, source.mount, source.sid, form)
        except (TimeoutError, _Unreachable, UrlRefused):
            return None
        return outcome if isinstance(outcome, ProbeResult) else None

    async def _detect(
        self, source_url: str, key: str, mount: str, sid: int | None
    ) -> ProbeResult | Rejected | None:
        forms: tuple[Form, ...] = ("icecast", "sid", "plain")
        for form in forms:
            outcome = await self._ask(source_url, key, mount, sid, form)
            if outcome is not None:
                return outcome
        return None

    async def _ask(
        self, source_url: str, key: str, mount: str, sid: int | None, form: Form
    ) -> ProbeResult | Rejected | None:
        if form == "icecast":
            answer = await self._get(f"{source_url}/admin/stats", auth=("admin", key))
        else:
            params = {"mode": "viewxml", "pass": key}
            if form == "sid":
                params = {"sid": str(sid or 1), **params}
            answer = await self._get(f"{source_url}/admin.cgi", params=params)
        return _classify(form, answer, mount, sid)

    async def _get(
        self,
        url: str,
        params: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> _Answer | None:
        """One GET; None when the server answered with something that is not HTTP."""
        headers: dict[str, str] = {}
        if auth is not None:
            # RFC 7617 with UTF-8, as Icecast reads it.
            headers["Authorization"] = "Basic " + b64encode(":".join(auth).encode()).decode()
        try:
            async with self._session().get(
                url, params=params, headers=headers, allow_redirects=False
            ) as response:
                return _Answer(response.status, response.headers, await _read(response))
        except aiohttp.ClientConnectorError as exc:
            raise _Unreachable(_reason(exc)) from None
        except aiohttp.ClientError:
            return None  # reachable, but it does not speak HTTP on the admin path

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # Every connection resolves through the guard (DNS rebinding), proxies unused.
            self._http = self._guard.session(self._timeout, {"User-Agent": USER_AGENT})
        return self._http


def _classify(
    form: Form, answer: _Answer | None, mount: str, sid: int | None
) -> ProbeResult | Rejected | None:
    """What one admin answer means: the figures, a refused key, or "not this kind"."""
    if answer is None:
        return None
    if answer.status == 200:
        if form == "icecast":
            return parse_icecast_stats(answer.body, mount)
        return parse_shoutcast_stats(answer.body, (sid or 1) if form == "sid" else None)
    if answer.status in (401, 403):
        if form != "icecast":
            return REJECTED
        marks = answer.headers.get("WWW-Authenticate", "") + answer.headers.get("Server", "")
        if "icecast" in marks.lower():
            return REJECTED
    return None


def parse_icecast_stats(body: bytes | None, mount: str) -> ProbeResult | None:
    """`<icestats>` of Icecast 2's `/admin/stats`; figures of `mount` when it is live."""
    root = _xml_root(body)
    if root is None or root.tag != "icestats":
        return None
    source = next((s for s in root.iter("source") if s.get("mount") == mount), None)
    if source is None:  # the DJ is not connected to this mount right now
        return ProbeResult("icecast2", None, None, None, None)
    title, artist = _text(source, "title"), _text(source, "artist")
    if artist and title:
        title = f"{artist} - {title}"
    bitrate = _int(_text(source, "bitrate")) or _audio_info_bitrate(_text(source, "audio_info"))
    listeners = _int(_text(source, "listeners"))
    return ProbeResult("icecast2", None, title, bitrate, listeners, _text(source, "server_type"))


def parse_shoutcast_stats(body: bytes | None, sid: int | None) -> ProbeResult | None:
    """`<SHOUTCASTSERVER>` of `admin.cgi?mode=viewxml`; `sid` is the one asked for, None
    when the request had no `sid=` (see the module docstring for v1 versus v2)."""
    root = _xml_root(body)
    if root is None or root.tag != "SHOUTCASTSERVER":
        return None
    version = _text(root, "VERSION")
    if version:
        v2 = not version.split(".", 1)[0].strip() == "1"
    else:
        v2 = sid is not None
    live = _text(root, "STREAMSTATUS") != "0"
    return ProbeResult(
        "shoutcast2" if v2 else "shoutcast1",
        (sid or 1) if v2 else None,
        _text(root, "SONGTITLE") if live else None,
        _int(_text(root, "BITRATE")),
        _int(_text(root, "CURRENTLISTENERS")),
        _text(root, "CONTENT") if live else None,
    )


async def _read(response: aiohttp.ClientResponse) -> bytes | None:
    if response.content_type.startswith("audio/") or response.content_type == "application/ogg":
        return None  # a stream, not an admin page: reading it would never end
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _first_bytes(response: aiohttp.ClientResponse) -> bytes:
    """Up to `SNIFF_BYTES` of the stream, or what came within `SNIFF_SECONDS`."""
    data = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SNIFF_SECONDS):
            while len(data) < SNIFF_BYTES:
                chunk = await response.content.read(SNIFF_BYTES - len(data))
                if not chunk:
                    break
                data += chunk
    return data


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not valid"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return (exc.os_error.strerror or "connection failed").lower()


def _xml_root(body: bytes | None) -> ET.Element | None:
    # Entity declarations are refused outright (no admin page uses them), which rules out
    # entity-expansion bombs; expat never fetches external resources and the size is capped.
    if not body or b"<!ENTITY" in body:
        return None
    try:
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError:
        return None


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    text = (child.text or "").strip() if child is not None else ""
    return text or None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _audio_info_bitrate(info: str | None) -> int | None:
    """`ice-bitrate=128;ice-channels=2` or `bitrate=128;…` (Icecast's audio_info)."""
    for part in (info or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().removeprefix("ice-") == "bitrate":
            return _int(value.strip())
    return None
