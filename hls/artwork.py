"""Cover art thumbnails: any image Pillow reads → a JPEG no larger than size × size."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

#: Larger images are refused before decoding (a decompression bomb, not a cover).
MAX_PIXELS = 50_000_000
_QUALITY = 85


class NotImage(ValueError):
    """The artwork is not an image Pillow can read; `message` is meant for the user."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def make_artwork(image: bytes, size: int = 500) -> bytes:
    """A JPEG thumbnail of `image` fitting in size × size (aspect kept, never enlarged)."""
    if size <= 0:
        raise ValueError("size must be positive")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image)) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise NotImage(f"The image is too large ({opened.width}×{opened.height}).")
                picture = ImageOps.exif_transpose(opened)
                picture.thumbnail((size, size), Image.Resampling.LANCZOS)
                picture = _flatten(picture)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NotImage("The artwork is not an image (upload a JPEG, PNG, GIF or WebP).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, NotImage):
            raise
        raise NotImage(f"The artwork image is damaged: {exc}") from exc
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=_QUALITY, optimize=True)
    return out.getvalue()


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB for JPEG: transparent parts on white, palettes and greyscale+alpha expanded."""
    if picture.mode in ("RGB", "L"):
        return picture
    rgba = picture.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
