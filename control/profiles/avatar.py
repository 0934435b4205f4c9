"""Avatar images: any PNG, JPEG or WebP decoded with PyAV (off the event loop), scaled to
fit `BOX` pixels and written as a baseline JPEG, so the page never serves what was uploaded
(metadata, huge or malformed images stay behind)."""

from __future__ import annotations

import asyncio
import fractions
import io

import av

from mediaserver.errors import InvalidInput

BOX = 512
MAX_BYTES = 5 * 1024 * 1024
#: Larger images are refused before they are decoded (a small file can claim huge pixels).
MAX_PIXELS = 40_000_000
_FORMATS = {"png_pipe", "jpeg_pipe", "webp_pipe"}
INVALID_IMAGE = "The avatar must be a PNG, JPEG or WebP image"


async def to_avatar(data: bytes) -> bytes:
    """The JPEG avatar of an uploaded image; 400 when it is not a usable image."""
    return await asyncio.to_thread(_convert, data)


def _convert(data: bytes) -> bytes:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.format.name not in _FORMATS or not container.streams.video:
                raise InvalidInput(INVALID_IMAGE)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > MAX_PIXELS:
                raise InvalidInput("The avatar image is too large (at most 40 megapixels)")
            frame = next(container.decode(stream))
    except (av.FFmpegError, StopIteration):
        raise InvalidInput(INVALID_IMAGE) from None
    scale = min(1.0, BOX / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = fractions.Fraction(1, 25)
    scaled = frame.reformat(width, height, "yuvj420p")
    return b"".join(bytes(packet) for packet in codec.encode(scaled) + codec.encode(None))
