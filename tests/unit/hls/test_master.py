"""Master playlists (RFC 8216 §4.3.4.2), sans-IO: render, parse back, refuse bad input."""

from __future__ import annotations

import pytest

from hls.master import Variant, parse_master_playlist, render_master_playlist


def test_variants_are_ordered_by_bandwidth_and_round_trip() -> None:
    variants = [
        Variant("mp3_320/index.m3u8", 335_000, 330_000, "mp4a.40.34"),
        Variant("aac_64/index.m3u8", 71_000, 70_000, "mp4a.40.2"),
        Variant("mp3_128/index.m3u8", 135_000, 134_000, "mp4a.40.34"),
    ]
    text = render_master_playlist(variants)
    assert text.splitlines()[:3] == ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert text.splitlines()[3:5] == [
        '#EXT-X-STREAM-INF:BANDWIDTH=71000,AVERAGE-BANDWIDTH=70000,CODECS="mp4a.40.2"',
        "aac_64/index.m3u8",
    ]
    assert "RESOLUTION" not in text
    assert parse_master_playlist(text) == sorted(variants, key=lambda v: v.bandwidth)


@pytest.mark.parametrize(
    "variant",
    [
        Variant("", 1000, 1000, None),
        Variant("a\nb.m3u8", 1000, 1000, None),
        Variant("ok.m3u8", 0, 0, None),
    ],
)
def test_bad_variants_are_refused(variant: Variant) -> None:
    with pytest.raises(ValueError):
        render_master_playlist([variant])


def test_an_empty_master_is_refused() -> None:
    with pytest.raises(ValueError):
        render_master_playlist([])
