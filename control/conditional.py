"""Conditional and range requests of the media routes (RFC 9110 §13, §14), sans-IO: header
text and the representation's size in, a decision out.

`Range: bytes=…`:

- one satisfiable range → `ByteRange` (serve 206 with `Content-Range`);
- no header, a unit other than `bytes`, a malformed header, or several ranges → `None`
  (serve the whole representation with 200: §14.2 lets a server ignore `Range`, and one
  full response beats a `multipart/byteranges` body few podcast players ask for or parse);
- a well-formed single range that starts past the end (or `bytes=-0`, or anything on an
  empty representation) → `UNSATISFIABLE` (416 with `Content-Range: bytes */size`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: A position longer than this is past the end of anything we serve (and `int()` of more
#: than 4300 digits raises): read as this many bytes.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS


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


Unsatisfiable = Literal["unsatisfiable"]
UNSATISFIABLE: Final[Unsatisfiable] = "unsatisfiable"


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The decision for `header` on a representation of `size` bytes (module doc)."""
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) != 1:
        return None
    first, dash, last = specs[0].partition("-")
    if not dash or not _digits(first, last):
        return None
    if not first:  # suffix: the last N bytes (§14.1.2)
        suffix = _position(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = _position(first)
    if last and _position(last) < start:
        return None  # invalid syntax (§14.1.1): ignore the header
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
