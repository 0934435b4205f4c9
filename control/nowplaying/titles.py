"""Now-playing titles as sources send them (ICY `StreamTitle`, admin stats), split into
artist and title the way players and directories show them. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

#: SHOUTcast / Icecast convention (what BUTT, Mixxx, Liquidsoap send): "Artist - Title".
SEPARATOR = " - "


@dataclass(frozen=True, slots=True)
class Song:
    """`text` as sent; `artist` None when the text does not read "Artist - Title"."""

    text: str
    artist: str | None
    title: str

    @classmethod
    def parse(cls, text: str) -> Song:
        """Split at the first " - " when both sides are non-empty ("Artist - Title"); a
        title with a dash of its own keeps it ("A - B - C" is artist "A", title "B - C")."""
        text = text.strip()
        artist, sep, title = text.partition(SEPARATOR)
        if sep and artist.strip() and title.strip():
            return cls(text, artist.strip(), title.strip())
        return cls(text, None, text)
