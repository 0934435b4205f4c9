"""Conditional and range requests of every media route (RFC 9110 §13, §14), written once.

`evaluate` is the decision, sans-IO: the request's fields and the representation's
validators in, one outcome out, in the order of §13.2.2:

1. `If-None-Match` (§13.1.2): any listed tag that weakly matches (§8.8.3.2) the ETag of a
   representation we could send (or `*`) → 304 naming that ETag, so a cache holding
   another content coding updates the copy it has (RFC 9111 §4.3.4);
2. else `If-Modified-Since` (§13.1.3), when the representation has a `Last-Modified`:
   not modified since the date → 304;
3. on GET only (§14.2: GET is the one method with range handling; HEAD gets the whole
   representation's headers), a `Range` is served when `If-Range` (§13.1.5), if sent,
   holds: an entity tag that strongly matches, or an HTTP-date exactly equal to a
   `Last-Modified` we have; anything else (a weak tag, a date when we have no
   `Last-Modified`, junk) → the whole representation, 200;
4. `Range` (§14.1.2): one satisfiable range → 206 with `Content-Range`; a well-formed range
   that starts past the end (or `bytes=-0`, or any range of an empty representation) →
   416 with `Content-Range: bytes */size` (§15.5.17); another unit, a malformed header or
   several ranges → 200 with everything (§14.2 lets a server ignore `Range`, and one full
   response beats a `multipart/byteranges` body few players ask for or parse).

`respond` is the aiohttp side: it ends the request with the 304 (ETag, Cache-Control, Vary
and the like, no body, no representation metadata: §15.4.5) or the 416 (our JSON error
body), else tells the caller which bytes to send; aiohttp sends a HEAD response's headers
without its body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Final, Literal

from aiohttp import hdrs, web
from multidict import CIMultiDict, istr


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start..end` inclusive of a representation of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


@dataclass(frozen=True, slots=True)
class NotModified:
    """Answer 304 (§15.4.5) naming `etag`, the representation the client holds."""

    etag: str


#: aiohttp's `hdrs.ETAG` is spelt `Etag`; the field's name is `ETag` (§8.8.3).
ETAG: Final = istr("ETag")

Unsatisfiable = Literal["unsatisfiable"]
UNSATISFIABLE: Final[Unsatisfiable] = "unsatisfiable"
Outcome = NotModified | ByteRange | Unsatisfiable | None

#: A position longer than this is past the end of anything we serve (and `int()` of more
#: than 4300 digits raises): read as this many bytes.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS
#: An entity tag in a list (§8.8.3): its opaque tag, which may hold commas.
_ENTITY_TAG = re.compile(r'[\s,]*(?:W/)?("[^"]*")\s*(?:,|$)')


def evaluate(
    request_headers: Mapping[str, str],
    method: str,
    etags: Sequence[str],
    size: int,
    last_modified: datetime | None = None,
    *,
    if_none_match: str | None,
    range_header: str | None,
) -> Outcome:
    """The outcome for a GET or HEAD (module doc). `etags`: the ETags of the
    representations the client may get, the selected one first (the only one a `Range` or
    `If-Range` applies to); `size`: the selected one's length. `if_none_match` and
    `range_header` are the request's fields, already read; the others are read from
    `request_headers` only when they matter. `last_modified` serves `If-Modified-Since` and,
    taken as strong (§8.8.2.2), `If-Range`: pass it for a ranged representation only if it
    cannot change twice within a second."""
    if if_none_match is not None:
        matched = matching_etag(if_none_match, etags)
        if matched is not None:
            return NotModified(matched)
    elif last_modified is not None:
        since = parse_http_date(request_headers.get(hdrs.IF_MODIFIED_SINCE))
        if since is not None and last_modified.replace(microsecond=0) <= since:
            return NotModified(etags[0])
    if range_header is None or method != hdrs.METH_GET:
        return None
    if_range = request_headers.get(hdrs.IF_RANGE)
    if if_range is not None and not if_range_holds(if_range, etags[0], last_modified):
        return None
    return parse_range(range_header, size)


def matching_etag(if_none_match: str, etags: Sequence[str]) -> str | None:
    """§13.1.2: the first of `etags` that the field names by weak comparison (§8.8.3.2),
    the first of all for `*`, or None. A malformed list names nothing."""
    field = if_none_match.strip(" \t,")  # §5.6.1: empty list elements are allowed
    if field == "*":
        return etags[0]
    if field in etags:  # one tag, as a cache revalidating its copy sends
        return field
    listed: set[str] = set()
    position = 0
    while position < len(field):
        tag = _ENTITY_TAG.match(field, position)
        if tag is None:
            return None
        listed.add(tag.group(1))
        position = tag.end()
    for etag in etags:
        if etag.removeprefix("W/") in listed:
            return etag
    return None


def if_range_holds(if_range: str, etag: str, last_modified: datetime | None) -> bool:
    """§13.1.5: an entity tag must match `etag` strongly (§8.8.3.2: neither weak); a date
    must equal `last_modified` to the second, and there must be one."""
    field = if_range.strip()
    if field.startswith(('"', "W/")):
        return field == etag and not etag.startswith("W/")
    if last_modified is None:
        return False
    return parse_http_date(field) == last_modified.replace(microsecond=0)


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """§14.1.2 `Range: bytes=…` on a representation of `size` bytes: the one range to
    send, `UNSATISFIABLE`, or None for the whole representation (module doc, step 4)."""
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _digits(first, last):
        return None
    if not first:  # suffix: the last N bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = _position(first)
    if last and _position(last) < start:
        return None  # invalid (§14.1.1): ignore the header
    if start >= size:
        return UNSATISFIABLE
    end = min(_position(last), size - 1) if last else size - 1
    return ByteRange(start, end, size)


def _digits(first: str, last: str) -> bool:
    """`first-last` with ASCII digits only, at least one side present."""
    if not first and not last:
        return False
    return all(not part or (part.isascii() and part.isdigit()) for part in (first, last))


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def http_date(moment: datetime) -> str:
    """§5.6.7 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date in any of §5.6.7's three formats (aware, UTC when it names no zone),
    or None when absent or not a date."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def respond(
    request: web.Request,
    headers: dict[str, str],
    etags: Sequence[str],
    size: int,
    last_modified: datetime | None = None,
    *,
    if_none_match: str | None,
    range_header: str | None,
) -> web.Response | ByteRange | None:
    """`evaluate`, then the 304 or 416 that ends the request here (built from `headers`,
    those of a 200); else the range to send with 206 (`Content-Range` now in `headers`),
    or None: send everything with 200."""
    outcome = evaluate(
        request.headers,
        request.method,
        etags,
        size,
        last_modified,
        if_none_match=if_none_match,
        range_header=range_header,
    )
    if isinstance(outcome, NotModified):
        return not_modified(headers, outcome.etag)
    if isinstance(outcome, str):
        return range_not_satisfiable(size, headers)
    if outcome is not None:
        headers[hdrs.CONTENT_RANGE] = outcome.content_range
    return outcome


#: Representation metadata, left out of a 304 (§15.4.5: it describes a body not sent) and
#: of a 416 (whose body is our error).
_REPRESENTATION = (
    hdrs.CONTENT_TYPE,
    hdrs.CONTENT_ENCODING,
    hdrs.CONTENT_LENGTH,
    hdrs.CONTENT_RANGE,
)


def not_modified(headers: Mapping[str, str], etag: str) -> web.Response:
    """304 with `headers` but the representation metadata, naming `etag`."""
    kept = _without_representation(headers)
    kept[ETAG] = etag
    return web.Response(status=304, headers=kept)


def range_not_satisfiable(size: int, headers: Mapping[str, str]) -> web.Response:
    """416 with `Content-Range: bytes */size` (§15.5.17) and the JSON error body every
    error has."""
    kept = _without_representation(headers)
    kept[hdrs.CONTENT_RANGE] = f"bytes */{size}"
    message = f"Range not satisfiable: the media is {size} bytes long"
    return web.json_response({"error": message, "code": 416}, status=416, headers=kept)


def _without_representation(headers: Mapping[str, str]) -> CIMultiDict[str]:
    kept = CIMultiDict(headers)
    for name in _REPRESENTATION:
        kept.popall(name, None)
    return kept
