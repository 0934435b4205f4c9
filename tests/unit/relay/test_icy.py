"""ICY metadata: demuxer, block codec and interleaver, on hand-built streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.icy import Audio, IcyDemuxer, Metadata, encode_metadata, interleave, parse_metadata

ONE = b"StreamTitle='One';".ljust(32, b"\x00")
TWO = b"StreamTitle='Guns N' Roses - Don't Cry; live';StreamUrl='';".ljust(64, b"\x00")
# metaint 8: audio, block (L=2), audio, empty block (L=0), audio, block (L=4), partial audio.
STREAM = b"AAAAAAAA" + b"\x02" + ONE + b"BBBBBBBB" + b"\x00" + b"CCCCCCCC" + b"\x04" + TWO + b"DDD"
EXPECTED_AUDIO = b"A" * 8 + b"B" * 8 + b"C" * 8 + b"DDD"
EXPECTED_META = [
    Metadata(ONE, {"StreamTitle": "One"}),
    Metadata(TWO, {"StreamTitle": "Guns N' Roses - Don't Cry; live", "StreamUrl": ""}),
]


def demux(data: bytes, metaint: int | None, sizes: list[int] | None = None) -> list[object]:
    """Feed `data` cycling through chunk sizes; return all events."""
    demuxer = IcyDemuxer(metaint)
    events: list[object] = []
    pos, i, sizes = 0, 0, sizes or [max(len(data), 1)]
    while pos < len(data):
        events += demuxer.feed(data[pos : pos + sizes[i % len(sizes)]])
        pos, i = pos + sizes[i % len(sizes)], i + 1
    return events


def split(events: list[object]) -> tuple[bytes, list[Metadata]]:
    audio = b"".join(e.data for e in events if isinstance(e, Audio))
    return audio, [e for e in events if isinstance(e, Metadata)]


def reference_interleave(data: bytes, offset: int, metaint: int, block: bytes) -> bytes:
    out = bytearray()
    for i, byte in enumerate(data):
        out.append(byte)
        if (offset + i + 1) % metaint == 0:
            out += block
    return bytes(out)


# Demuxer --------------------------------------------------------------------------------


def test_golden_stream_in_one_feed() -> None:
    assert demux(STREAM, 8) == [
        Audio(b"A" * 8),
        EXPECTED_META[0],
        Audio(b"B" * 8 + b"C" * 8),  # merged across the empty (L=0) block
        EXPECTED_META[1],
        Audio(b"DDD"),
    ]
    assert EXPECTED_META[1].title == "Guns N' Roses - Don't Cry; live"


@pytest.mark.parametrize("metaint", [None, 0])
def test_without_metaint_everything_is_audio(metaint: int | None) -> None:
    demuxer = IcyDemuxer(metaint)
    assert demuxer.feed(STREAM) == [Audio(STREAM)]
    assert demuxer.feed(b"") == []


def test_negative_metaint_is_rejected() -> None:
    with pytest.raises(ValueError, match="metaint"):
        IcyDemuxer(-1)


def test_one_byte_at_a_time() -> None:
    assert split(demux(STREAM, 8, [1])) == (EXPECTED_AUDIO, EXPECTED_META)


def test_every_two_way_split() -> None:
    for cut in range(len(STREAM) + 1):
        demuxer = IcyDemuxer(8)
        events = demuxer.feed(STREAM[:cut]) + demuxer.feed(STREAM[cut:])
        assert split(events) == (EXPECTED_AUDIO, EXPECTED_META), cut


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_any_chunking(sizes: list[int]) -> None:
    assert split(demux(STREAM, 8, sizes)) == (EXPECTED_AUDIO, EXPECTED_META)


def test_no_empty_audio_events() -> None:
    events = demux(STREAM, 8, [1])
    assert all(e.data for e in events if isinstance(e, Audio))


# parse_metadata -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            b"StreamTitle='Artist - Title';StreamUrl='http://example.com/a?b=1;c=2';",
            {"StreamTitle": "Artist - Title", "StreamUrl": "http://example.com/a?b=1;c=2"},
        ),
        (
            b"StreamTitle='Guns N' Roses - Don't Cry; live';StreamUrl='';\x00\x00\x00",
            {"StreamTitle": "Guns N' Roses - Don't Cry; live", "StreamUrl": ""},
        ),
        (b"StreamTitle='a'; b';", {"StreamTitle": "a'; b"}),
        (b"StreamTitle='Rock 'n' Roll'';", {"StreamTitle": "Rock 'n' Roll'"}),
        (b"StreamTitle='No semicolon'", {"StreamTitle": "No semicolon"}),
        (b"StreamTitle='Unterminated", {"StreamTitle": "Unterminated"}),
        (b"StreamTitle=Bare value;StreamUrl='';", {"StreamTitle": "Bare value", "StreamUrl": ""}),
        (b"StreamTitle='Padded';  \r\n\x00\x00", {"StreamTitle": "Padded"}),
        (b"StreamTitle='';", {"StreamTitle": ""}),
        (b"\x00" * 16, {}),
        (b"", {}),
        (b"not metadata at all", {}),
    ],
)
def test_parse_metadata(block: bytes, expected: dict[str, str]) -> None:
    assert parse_metadata(block) == expected


@pytest.mark.parametrize(
    ("block", "title"),
    [
        ("StreamTitle='Beyoncé - Déjà Vu';".encode("latin-1"), "Beyoncé - Déjà Vu"),
        ("StreamTitle='Sigur Rós – Hoppípolla';".encode(), "Sigur Rós – Hoppípolla"),
        ("StreamTitle='Motörhead';".encode("cp1252"), "Motörhead"),
        # Mixed: the UTF-8 part stays UTF-8, the stray latin-1 byte is decoded as latin-1.
        ("StreamTitle='Ç".encode() + "a va – Noël';".encode("cp1252"), "Ça va \x96 Noël"),
    ],
)
def test_parse_metadata_decodes_utf8_with_latin1_fallback(block: bytes, title: str) -> None:
    assert parse_metadata(block)["StreamTitle"] == title


def test_metadata_without_title() -> None:
    assert Metadata(b"StreamUrl='x';", {"StreamUrl": "x"}).title is None


# encode_metadata ------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [None, {}])
def test_encode_nothing_is_a_zero_length_byte(fields: dict[str, str] | None) -> None:
    assert encode_metadata(fields) == b"\x00"


def test_encode_golden() -> None:
    assert encode_metadata({"StreamTitle": "Hi"}) == b"\x02" + b"StreamTitle='Hi';".ljust(
        32, b"\x00"
    )
    assert encode_metadata({"StreamTitle": "", "StreamUrl": ""}) == (
        b"\x02" + b"StreamTitle='';StreamUrl='';".ljust(32, b"\x00")
    )


def test_encode_defuses_quote_semicolon() -> None:
    encoded = encode_metadata({"StreamTitle": "a';StreamUrl='evil", "StreamUrl": "ok"})
    assert parse_metadata(encoded[1:]) == {"StreamTitle": "a' ;StreamUrl='evil", "StreamUrl": "ok"}


@pytest.mark.parametrize("title", ["x" * 10_000, "é" * 5_000, "😀" * 3_000])
def test_encode_truncates_to_255_blocks(title: str) -> None:
    encoded = encode_metadata({"StreamTitle": title, "StreamUrl": "http://x"})
    assert encoded[0] == 255 and len(encoded) == 1 + 255 * 16
    parsed = parse_metadata(encoded[1:])
    assert title.startswith(parsed["StreamTitle"])  # cut on a character boundary
    assert len(parsed["StreamTitle"].encode()) > 4000
    assert "StreamUrl" not in parsed


def test_encode_replaces_lone_surrogates() -> None:
    assert parse_metadata(encode_metadata({"StreamTitle": "a\ud800b"})[1:]) == {
        "StreamTitle": "a?b"
    }


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=300, deadline=None)
@given(title=text, url=text)
def test_encode_parse_round_trip(title: str, url: str) -> None:
    encoded = encode_metadata({"StreamTitle": title, "StreamUrl": url})
    assert len(encoded) == 1 + encoded[0] * 16
    expected = {
        k: v.replace("\x00", "").replace("';", "' ;")
        for k, v in [("StreamTitle", title), ("StreamUrl", url)]
    }
    assert parse_metadata(encoded[1:]) == expected


# interleave -----------------------------------------------------------------------------


@pytest.mark.parametrize("metaint", [1, 3, 16, 100])
@pytest.mark.parametrize("block", [b"\x00", encode_metadata({"StreamTitle": "T"})])
def test_interleave_matches_reference(metaint: int, block: bytes) -> None:
    audio = bytes(range(256)) * 2
    for offset in [*range(2 * metaint + 2), 10 * metaint - 1, 12345 * metaint + 7]:
        for length in [*range(3 * metaint + 2), 511]:
            data = audio[:length]
            assert interleave(data, offset, metaint, block) == reference_interleave(
                data, offset, metaint, block
            ), (offset, length)


def test_interleave_rejects_bad_metaint() -> None:
    with pytest.raises(ValueError, match="metaint"):
        interleave(b"abc", 0, 0, b"\x00")


@settings(max_examples=200, deadline=None)
@given(
    metaint=st.integers(1, 64),
    start_block=st.integers(0, 1000),
    chunks=st.lists(st.tuples(st.binary(max_size=150), st.sampled_from(["", "A", "B'; C"]))),
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=5),
)
def test_demuxing_interleaved_audio_gives_it_back(
    metaint: int, start_block: int, chunks: list[tuple[bytes, str]], sizes: list[int]
) -> None:
    """A listener aligned to a multiple of metaint sees the original audio and, at each
    boundary, the metadata that was current when the hub sent that chunk."""
    offset = start_block * metaint
    wire, expected_titles = b"", []
    for data, title in chunks:
        block = encode_metadata({"StreamTitle": title} if title else None)
        wire += interleave(data, offset, metaint, block)
        boundaries = (offset + len(data)) // metaint - offset // metaint
        if title:
            expected_titles += [title] * boundaries
        offset += len(data)
    audio, metadata = split(demux(wire, metaint, sizes))
    assert audio == b"".join(data for data, _ in chunks)
    assert [m.title for m in metadata] == [t.replace("';", "' ;") for t in expected_titles]
