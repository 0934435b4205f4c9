"""build_ladder on real files: every rendition decoded by a real decoder (PyAV), HLS
playlists parsed and their segments decoded, the master playlist, waveform, loudness and
artwork checked as a listener or a player would notice them."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from hls.ladder import LadderResult, NotImage, build_ladder, make_artwork, probe_audio
from hls.master import parse_master_playlist
from hls.playlist import parse_media_playlist
from tests.audiofiles import decoded_seconds, tone, write_audio

TONE, SILENCE = 10.0, 4.0  # seconds of a -20 dBFS 1 kHz sine, then of silence
DURATION = TONE + SILENCE


@pytest.fixture(scope="module")
def flac_ladder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, LadderResult]:
    root = tmp_path_factory.mktemp("flac")
    source = write_audio(root / "in.flac", "flac", tone(TONE, noise=0.0, silence=SILENCE))
    cover = io.BytesIO()
    Image.new("RGB", (1200, 800), (200, 30, 30)).save(cover, format="PNG")
    out = root / "out"
    result = build_ladder(source, out, info=probe_audio(source), cover=cover.getvalue())
    return source, out, result


def _kinds(result: LadderResult) -> list[tuple[str, str, int | None]]:
    return [(r.quality, r.codec, r.bitrate_kbps) for r in result.renditions]


def test_lossless_source_gets_the_whole_ladder(
    flac_ladder: tuple[Path, Path, LadderResult],
) -> None:
    source, out, result = flac_ladder
    assert _kinds(result) == [
        ("low", "aac", 64),
        ("medium", "mp3", 128),
        ("medium", "aac", 128),
        ("high", "mp3", 320),
        ("lossless", "flac", result.renditions[-1].bitrate_kbps),
    ]
    lossless = result.renditions[-1]
    assert (lossless.file_name, lossless.hls_dir, lossless.format) == (
        "original.flac",
        None,
        "flac",
    )
    assert (out / "original.flac").read_bytes() == source.read_bytes()
    assert result.duration_seconds == pytest.approx(DURATION, abs=0.01)


def test_every_progressive_file_decodes_with_the_right_duration(
    flac_ladder: tuple[Path, Path, LadderResult],
) -> None:
    _, out, result = flac_ladder
    for rendition in result.renditions:
        path = out / rendition.file_name
        seconds, codec, rate, channels = decoded_seconds(path)
        assert seconds == pytest.approx(DURATION, abs=0.1), rendition.file_name
        assert (codec, rate, channels) == (rendition.codec, 44_100, 2)
        assert rendition.size_bytes == path.stat().st_size
        if rendition.quality != "lossless":
            with av.open(str(path)) as container:
                kbps = container.streams.audio[0].codec_context.bit_rate / 1000
            if rendition.codec == "mp3":  # CBR
                assert kbps == pytest.approx(rendition.bitrate_kbps, rel=0.02), rendition.file_name
            else:  # AAC spends less on a pure tone and silence, never more
                assert rendition.bitrate_kbps / 2 < kbps < rendition.bitrate_kbps * 1.05


def test_aac_files_are_faststart_mp4(flac_ladder: tuple[Path, Path, LadderResult]) -> None:
    _, out, _ = flac_ladder
    for name in ("aac_64.m4a", "aac_128.m4a"):
        data = (out / name).read_bytes()
        assert data[4:8] == b"ftyp"
        assert data.index(b"moov") < data.index(b"mdat"), name


def test_hls_renditions_play_through(flac_ladder: tuple[Path, Path, LadderResult]) -> None:
    _, out, result = flac_ladder
    for rendition in result.renditions[:-1]:
        assert rendition.hls_dir is not None
        folder = out / rendition.hls_dir
        text = (folder / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        playlist = parse_media_playlist(text)
        assert [s.uri for s in playlist.segments] == ["segment000.ts", "segment001.ts"]
        assert sum(s.duration for s in playlist.segments) == pytest.approx(DURATION, abs=0.1)
        decoded = 0.0
        for segment in playlist.segments:
            seconds, codec, _, _ = decoded_seconds(folder / segment.uri)
            assert codec == rendition.codec
            assert seconds == pytest.approx(segment.duration, abs=0.05)
            assert round(segment.duration) <= playlist.target_duration
            decoded += seconds
        assert decoded == pytest.approx(DURATION, abs=0.1)


def test_the_master_playlist_lists_renditions_by_bandwidth(
    flac_ladder: tuple[Path, Path, LadderResult],
) -> None:
    _, out, result = flac_ladder
    text = (out / result.master_name).read_text()
    assert "RESOLUTION" not in text
    variants = parse_master_playlist(text)
    # RFC 8216 §4.3.4.2 ordering: by bandwidth.
    assert [v.bandwidth for v in variants] == sorted(v.bandwidth for v in variants)
    expected = [
        "aac_64/index.m3u8",
        "aac_128/index.m3u8",
        "mp3_128/index.m3u8",
        "mp3_320/index.m3u8",
    ]
    assert sorted(v.uri for v in variants) == sorted(expected)
    variants.sort(key=lambda v: expected.index(v.uri))
    assert [v.codecs for v in variants] == ["mp4a.40.2", "mp4a.40.2", "mp4a.40.34", "mp4a.40.34"]
    for variant, nominal in zip(variants, (64, 128, 128, 320), strict=True):
        # The TS container costs a few per cent; BANDWIDTH is the peak segment.
        floor = nominal * 1000 if "40.34" in (variant.codecs or "") else nominal * 500
        assert floor < variant.average_bandwidth < nominal * 1000 * 1.15
        assert variant.average_bandwidth <= variant.bandwidth < nominal * 1000 * 1.15
        assert (out / variant.uri).is_file()


def test_a_player_follows_the_master_playlist(flac_ladder: tuple[Path, Path, LadderResult]) -> None:
    _, out, result = flac_ladder
    # libavformat's HLS client reads the master, picks a variant and plays it to the end.
    with av.open(str(out / result.master_name)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].codec_context.sample_rate
    assert samples / rate == pytest.approx(DURATION, abs=0.15)


def test_waveform_has_1800_pairs_and_silence_reads_zero(
    flac_ladder: tuple[Path, Path, LadderResult],
) -> None:
    _, out, result = flac_ladder
    waveform = json.loads((out / result.waveform_name).read_text())
    assert {k: waveform[k] for k in ("version", "channels", "bits", "length", "sample_rate")} == {
        "version": 2,
        "channels": 1,
        "bits": 8,
        "length": 1800,
        "sample_rate": 44_100,
    }
    assert waveform["samples_per_pixel"] == round(DURATION * 44_100 / 1800)
    data = waveform["data"]
    assert len(data) == 3600 and all(-128 <= v <= 127 for v in data)
    lows, highs = data[0::2], data[1::2]
    loud = int(1800 * TONE / DURATION) - 2
    # A 0.1 full-scale sine peaks at 12.7 of 127.
    assert all(-14 <= low <= -11 for low in lows[:loud])
    assert all(11 <= high <= 14 for high in highs[:loud])
    assert all(v == 0 for v in data[2 * (loud + 4) :])


def test_loudness_of_a_minus_20_dbfs_sine(flac_ladder: tuple[Path, Path, LadderResult]) -> None:
    source, _, result = flac_ladder
    # EBU Tech 3341 case 1: a stereo 1 kHz sine at -23 dBFS reads -23 LUFS; gating drops
    # the silence, so -20 dBFS reads -20 LUFS.
    assert result.loudness_lufs == pytest.approx(-20.0, abs=0.2)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return
    run = subprocess.run(
        [ffmpeg, "-nostats", "-i", str(source), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"I:\s+(-?[0-9.]+) LUFS", run.stderr)
    assert result.loudness_lufs == pytest.approx(float(found[-1]), abs=0.1)


def test_artwork_is_a_500px_jpeg(flac_ladder: tuple[Path, Path, LadderResult]) -> None:
    _, out, result = flac_ladder
    assert result.artwork_name == "artwork.jpg"
    with Image.open(out / "artwork.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (500, 333))
        red, green, blue = image.getpixel((250, 160))  # type: ignore[misc]
        assert red > 180 and green < 60 and blue < 60


def test_make_artwork_refuses_what_is_not_an_image() -> None:
    with pytest.raises(NotImage):
        make_artwork(b"ID3\x03\x00 not a picture at all")
    with pytest.raises(NotImage):
        make_artwork(b"")


def test_make_artwork_never_enlarges_and_flattens_transparency() -> None:
    small = io.BytesIO()
    Image.new("RGBA", (100, 40), (0, 0, 0, 0)).save(small, format="PNG")
    with Image.open(io.BytesIO(make_artwork(small.getvalue()))) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (100, 40), "RGB")
        assert image.getpixel((50, 20)) == (255, 255, 255)


def test_a_128_kbps_mp3_source_gets_no_320_and_no_lossless(tmp_path: Path) -> None:
    source = write_audio(tmp_path / "in.mp3", "mp3", tone(12), bitrate_kbps=128)
    result = build_ladder(source, tmp_path / "out", info=probe_audio(source))
    assert [(r.quality, r.codec, r.bitrate_kbps) for r in result.renditions] == [
        ("low", "aac", 64),
        ("medium", "mp3", 128),
        ("medium", "aac", 128),
    ]
    assert not (tmp_path / "out" / "mp3_320").exists()
    assert result.artwork_name is None and not (tmp_path / "out" / "artwork.jpg").exists()
    assert len(parse_master_playlist((tmp_path / "out" / "master.m3u8").read_text())) == 3
    for rendition in result.renditions:
        seconds, *_ = decoded_seconds(tmp_path / "out" / rendition.file_name)
        assert seconds == pytest.approx(12.0, abs=0.1)


def test_a_320_kbps_mp3_source_gets_the_320_rendition(tmp_path: Path) -> None:
    source = write_audio(tmp_path / "in.mp3", "mp3", tone(6), bitrate_kbps=320)
    result = build_ladder(source, tmp_path / "out", info=probe_audio(source))
    assert [r.quality for r in result.renditions] == ["low", "medium", "medium", "high"]


def test_a_96_khz_mono_wav_is_resampled_once_and_kept_mono(tmp_path: Path) -> None:
    source = write_audio(tmp_path / "in.wav", "wav", tone(8, rate=96_000, channels=1), rate=96_000)
    result = build_ladder(source, tmp_path / "out", info=probe_audio(source), segment_seconds=4)
    assert result.sample_rate == 48_000
    assert result.renditions[-1].file_name == "original.wav"
    for rendition in result.renditions[:-1]:
        seconds, _, rate, channels = decoded_seconds(tmp_path / "out" / rendition.file_name)
        assert (rate, channels) == (48_000, 1)
        assert seconds == pytest.approx(8.0, abs=0.1)
        playlist = (tmp_path / "out" / f"{rendition.hls_dir}/index.m3u8").read_text()
        assert len(parse_media_playlist(playlist).segments) == 2


@pytest.mark.parametrize("kind", ["ogg", "opus", "m4a", "aac", "aiff"])
def test_other_formats_build_a_ladder(kind: str, tmp_path: Path) -> None:
    source = write_audio(tmp_path / "in.bin", kind, tone(5), bitrate_kbps=160)
    info = probe_audio(source)
    result = build_ladder(source, tmp_path / "out", info=info)
    assert result.duration_seconds == pytest.approx(5.0, abs=0.1)
    assert (result.renditions[-1].quality == "lossless") is info.lossless
    seconds, *_ = decoded_seconds(tmp_path / "out" / "mp3_128.mp3")
    assert seconds == pytest.approx(5.0, abs=0.1)


def test_without_the_system_lame_pyav_encodes_the_mp3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where libmp3lame.so.0 is not installed, PyAV's bundled LAME does the MP3 encodes.
    monkeypatch.setattr("hls.ladder.load_lame", lambda: None)
    source = write_audio(tmp_path / "in.flac", "flac", tone(7))
    result = build_ladder(source, tmp_path / "out", info=probe_audio(source), segment_seconds=3)
    for name in ("mp3_128", "mp3_320"):
        seconds, codec, rate, _ = decoded_seconds(tmp_path / "out" / f"{name}.mp3")
        assert (codec, rate) == ("mp3", 44_100)
        assert seconds == pytest.approx(7.0, abs=0.1)
        playlist = parse_media_playlist((tmp_path / "out" / name / "index.m3u8").read_text())
        assert [s.uri for s in playlist.segments] == ["segment000.ts", "segment001.ts"]
        assert sum(s.duration for s in playlist.segments) == pytest.approx(7.0, abs=0.1)
    assert result.renditions[-1].quality == "lossless"


def test_a_surround_flac_becomes_stereo_and_silence_has_no_loudness(tmp_path: Path) -> None:
    source = tmp_path / "in.flac"
    with av.open(str(source), "w", format="flac") as output:
        stream = output.add_stream("flac", rate=44_100)
        stream.codec_context.layout = "5.1"
        stream.codec_context.format = "s16"
        silence = np.zeros((1, 6 * 4 * 44_100), dtype=np.int16)  # 4 s, interleaved
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="5.1")
        frame.sample_rate = 44_100
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    info = probe_audio(source)
    assert info.channels == 6
    result = build_ladder(source, tmp_path / "out", info=info)
    assert result.loudness_lufs is None
    _, _, _, channels = decoded_seconds(tmp_path / "out" / "aac_128.m4a")
    assert channels == 2
    waveform = json.loads((tmp_path / "out" / "waveform.json").read_text())
    assert set(waveform["data"]) == {0}
