"""A multipart/form-data upload read as a stream of fields, never buffered whole.

`form_fields` yields the form's parts in the order the client sent them: a `FileField`
(the part named `file`) whose `chunks` are read from the socket as the consumer iterates
them, counted against the size limit (413 the moment it is crossed), and small
`TextField`s read into memory up to `TEXT_LIMIT` bytes. The consumer must finish with a
file's chunks before asking for the next field. This reads `request.content` directly, so
the app's `client_max_size` (meant for JSON bodies) does not apply here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    BodyPartReader,
    web,
)
from aiohttp.http import HttpProcessingError

from control.inputs import check_encoding, check_text
from mediaserver.config import SETTINGS
from mediaserver.errors import InvalidInput, RequestTimeout, TooLarge

FILE_FIELD = "file"
#: Uploads are sent as they are: audio does not compress, and a coding would hide the size.
IDENTITY = frozenset({"identity"})
TEXT_LIMIT = 4096  # bytes of a text field: 200 characters of UTF-8 and then some
FORM_OVERHEAD = 64 * 1024  # part headers and boundaries, over the file and text fields
READ_SIZE = 256 * 1024
_MiB = 1024 * 1024
T = TypeVar("T")
#: What aiohttp's multipart reader raises on a malformed body: ValueError (no boundary, an
#: early end), its header parser's errors (control characters in a part's headers), and
#: the Content-Disposition warnings where warnings are errors (the tests).
MALFORMED = (
    ValueError,
    HttpProcessingError,
    BadContentDispositionHeader,
    BadContentDispositionParam,
)


@dataclass(frozen=True, slots=True)
class TextField:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FileField:
    """The uploaded file: `filename` as the client sent it (shown only, never a path)."""

    filename: str | None
    chunks: AsyncIterator[bytes]
    name: str = FILE_FIELD


FormField = TextField | FileField


def file_too_large(limit: int) -> TooLarge:
    if limit % _MiB == 0:
        size = f"{limit // _MiB} MB"
    elif limit % 1024 == 0:
        size = f"{limit // 1024} KB"
    else:
        size = f"{limit} bytes"
    return TooLarge(f"File is larger than the {size} limit.")


async def form_fields(
    request: web.Request,
    max_file_bytes: int,
    *,
    files: Mapping[str, int] | None = None,
    field_hint: str = FILE_FIELD,
) -> AsyncIterator[FormField]:
    """The fields of `request`'s multipart/form-data body, as they arrive (see the module).
    `files` names the file parts and each one's size limit (default: `file`, of
    `max_file_bytes`); `field_hint` is the part named when the body is not a form."""
    limits = dict(files) if files is not None else {FILE_FIELD: max_file_bytes}
    if request.content_type != "multipart/form-data":
        raise InvalidInput(
            f"Send the audio as multipart/form-data, in a form field named '{field_hint}'."
        )
    check_encoding(request, IDENTITY)
    declared = request.content_length
    if declared is not None and declared > sum(limits.values()) + 2 * TEXT_LIMIT + FORM_OVERHEAD:
        raise file_too_large(max_file_bytes)  # refused before reading a byte of it
    idle = request.app[SETTINGS].body_read_timeout_seconds
    try:
        reader = await request.multipart()
        while (part := await _idle(reader.next(), idle)) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("Nested multipart bodies are not supported.")
            check_text(part.name or "", None, "form", key=True)
            if part.name in limits:
                if part.filename is not None:
                    check_text(part.filename, f"{part.name} (its file name)", "form")
                chunks = _counted(part, limits[part.name], idle)
                yield FileField(part.filename, chunks, part.name)
            else:
                yield TextField(part.name or "", await _text(part, idle))
    # aiohttp's parser: no boundary, bad headers, early end; a malformed Content-Disposition
    # is only a warning (an error where warnings are errors, as in the tests).
    except MALFORMED as exc:
        raise InvalidInput(f"Malformed multipart/form-data body: {exc}") from None


def upload_stalled(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"The upload stalled: nothing arrived for {seconds:g} s.")


async def _idle(step: Awaitable[T], seconds: float) -> T:
    """`step` (a read from the client), or `RequestTimeout` when nothing came for `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            return await step
    except TimeoutError:
        raise upload_stalled(seconds) from None


async def _counted(part: BodyPartReader, limit: int, idle: float) -> AsyncIterator[bytes]:
    total = 0
    while True:
        try:
            chunk = await _idle(part.read_chunk(READ_SIZE), idle)
        except MALFORMED as exc:
            raise InvalidInput(f"Malformed multipart/form-data body: {exc}") from None
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise file_too_large(limit)
        yield chunk


async def _text(part: BodyPartReader, idle: float) -> str:
    data = bytearray()
    while chunk := await _idle(part.read_chunk(TEXT_LIMIT), idle):
        data += chunk
        if len(data) > TEXT_LIMIT:
            raise InvalidInput(f"Form field '{part.name}' is too long.")
    try:
        text = data.decode(part.get_charset(default="utf-8"))
    except (LookupError, UnicodeDecodeError):
        raise InvalidInput(f"Form field '{part.name}' must be UTF-8 text.") from None
    check_text(text, part.name, "form")
    return text
