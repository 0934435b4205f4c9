"""Waveform peaks (sans-IO): exact against a brute-force min/max, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest

from hls.waveform import Waveform


def _peaks(samples: np.ndarray, chunk: int, pixels: int, expected: int) -> list[int]:
    waveform = Waveform(44_100, expected, pixels=pixels)
    for start in range(0, samples.shape[1], chunk):
        waveform.feed(samples[:, start : start + chunk])
    document = waveform.result()
    assert document["length"] == pixels and len(document["data"]) == 2 * pixels
    data: list[int] = document["data"]
    return data


@pytest.mark.parametrize("chunk", [1, 7, 1000, 4608, 50_000])
def test_peaks_match_a_brute_force_min_max(chunk: int) -> None:
    rng = np.random.default_rng(5)
    samples = rng.uniform(-1, 1, (2, 12_345)).astype(np.float32)
    pixels = 100
    # expected_samples this small makes one block per sample: pixel edges are exact.
    data = _peaks(samples, chunk, pixels, expected=100)
    envelope_low, envelope_high = samples.min(axis=0), samples.max(axis=0)
    n = samples.shape[1]
    for pixel in range(pixels):
        lo, hi = pixel * n // pixels, (pixel + 1) * n // pixels
        assert data[2 * pixel] == round(float(envelope_low[lo:hi].min()) * 127)
        assert data[2 * pixel + 1] == round(float(envelope_high[lo:hi].max()) * 127)


def test_chunking_does_not_change_the_peaks_of_a_long_track() -> None:
    rng = np.random.default_rng(6)
    samples = rng.uniform(-0.5, 0.5, (1, 44_100 * 30)).astype(np.float32)
    samples[:, 44_100 * 10 : 44_100 * 20] = 0.0  # silence in the middle third
    runs = {chunk: _peaks(samples, chunk, 1800, samples.shape[1]) for chunk in (1024, 4608)}
    assert runs[1024] == runs[4608]
    data = runs[1024]
    assert all(v == 0 for v in data[2 * 610 : 2 * 1190])
    assert min(data[0::2][:590]) >= -64 and max(data[1::2][:590]) <= 64
    assert min(data[1::2][:590]) > 40


def test_an_empty_stream_reads_flat() -> None:
    document = Waveform(48_000, 0).result()
    assert document["data"] == [0] * 3600 and document["sample_rate"] == 48_000
