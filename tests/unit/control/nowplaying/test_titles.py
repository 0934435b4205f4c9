from __future__ import annotations

import pytest

from control.nowplaying.titles import Song


@pytest.mark.parametrize(
    ("text", "artist", "title"),
    [
        ("Daft Punk - Around the World", "Daft Punk", "Around the World"),
        ("  A - B - C ", "A", "B - C"),
        ("Just a title", None, "Just a title"),
        ("Jay-Z - 99 Problems", "Jay-Z", "99 Problems"),
        (" - Untitled", None, "- Untitled"),
        ("Artist - ", None, "Artist -"),
    ],
)
def test_titles_split_into_artist_and_title_where_they_read_so(text, artist, title):
    song = Song.parse(text)
    assert (song.text, song.artist, song.title) == (text.strip(), artist, title)
