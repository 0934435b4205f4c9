"""Waveform peaks in BBC audiowaveform's JSON format (version 2, 8 bits, one channel), as
wavesurfer.js and other players read them: `length` min/max pairs over the whole track.

`Waveform.feed` takes decoded blocks of samples (channels × samples, floats in [-1, 1])
as they come and keeps only the min and max of every `block` samples across all channels,
so memory stays small whatever the duration; `result` groups those into `length` pixels
once the real number of samples is known. No I/O, no PyAV.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

PIXELS = 1800
_SCALE = 127  # 8-bit peaks: -128..127 (audiowaveform's "bits": 8)


class Waveform:
    """Min/max peaks of a stream of float sample blocks."""

    def __init__(self, sample_rate: int, expected_samples: int, pixels: int = PIXELS) -> None:
        if sample_rate <= 0 or pixels <= 0:
            raise ValueError("sample rate and pixel count must be positive")
        self.sample_rate = sample_rate
        self.pixels = pixels
        # Blocks several times finer than a pixel, so the grouping at the end is even.
        self.block = max(1, min(256, expected_samples // (pixels * 4)))
        self.samples = 0
        self._carry: npt.NDArray[np.float32] | None = None  # channels × (< block)
        self._mins: list[npt.NDArray[np.float32]] = []
        self._maxs: list[npt.NDArray[np.float32]] = []

    def feed(self, samples: npt.NDArray[Any]) -> None:
        """Add `samples` (shape channels × n, or n for mono)."""
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[np.newaxis, :]
        self.samples += data.shape[1]
        if self._carry is not None and self._carry.shape[1]:
            data = np.concatenate([self._carry, data], axis=1)
        whole = data.shape[1] // self.block * self.block
        self._carry = data[:, whole:]
        if whole:
            # One pass each for min and max, over the channels and the block at once.
            blocks = data[:, :whole].reshape(data.shape[0], -1, self.block)
            self._mins.append(blocks.min(axis=(0, 2)))
            self._maxs.append(blocks.max(axis=(0, 2)))

    def result(self) -> dict[str, Any]:
        """The audiowaveform JSON document (a dict ready for `json.dumps`)."""
        mins, maxs = list(self._mins), list(self._maxs)
        if self._carry is not None and self._carry.size:
            mins.append(self._carry.min(keepdims=True).reshape(1))
            maxs.append(self._carry.max(keepdims=True).reshape(1))
        data: list[int] = []
        if mins:
            low, high = np.concatenate(mins), np.concatenate(maxs)
            starts = (np.arange(self.pixels) * len(low)) // self.pixels
            pixel_low = np.minimum.reduceat(low, starts)
            pixel_high = np.maximum.reduceat(high, starts)
            pairs = np.stack([pixel_low, pixel_high], axis=1).reshape(-1)
            data = np.clip(np.round(pairs * _SCALE), -128, 127).astype(np.int64).tolist()
        else:
            data = [0] * (2 * self.pixels)
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": max(1, round(self.samples / self.pixels)),
            "bits": 8,
            "length": self.pixels,
            "data": data,
        }
