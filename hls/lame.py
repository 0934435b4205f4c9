"""The system's LAME (libmp3lame.so.0) through ctypes, for the ladder's MP3 encodes.

Why not PyAV's `libmp3lame` encoder: the libmp3lame that PyAV's wheels bundle is built
without the compiler's optimisations and encodes ~4.5 × slower than the distribution's
build of the same LAME 3.100 (measured: 8.6 s against 1.9 s of CPU for 4 minutes of stereo
at 128 kbit/s), which alone would put the ladder far above the cost of an `ffmpeg` doing the
same encodes. `load_lame()` returns None when the library is missing, and the ladder falls
back to PyAV's encoder (slower, same output format).

API: lame.h of LAME 3.100 (`lame_encode_buffer_ieee_float` takes floats in [-1, 1]).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import numpy as np
import numpy.typing as npt

_CANDIDATES = ("libmp3lame.so.0", "libmp3lame.so")
_JOINT_STEREO, _MONO = 1, 3  # lame.h MPEG_mode
_QUALITY = 3  # lame.h: LAME's default algorithm quality, as ffmpeg leaves it
_FLOATS = ctypes.POINTER(ctypes.c_float)


@functools.cache
def load_lame() -> ctypes.CDLL | None:
    """The system's libmp3lame, or None when it is not installed."""
    names = [*_CANDIDATES, ctypes.util.find_library("mp3lame")]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return _declare(lib)
    return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.lame_init.restype = ctypes.c_void_p
    lib.lame_init.argtypes = []
    for name in (
        "lame_set_in_samplerate",
        "lame_set_out_samplerate",
        "lame_set_num_channels",
        "lame_set_brate",
        "lame_set_mode",
        "lame_set_quality",
        "lame_set_VBR",
        "lame_set_bWriteVbrTag",
    ):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
        getattr(lib, name).restype = ctypes.c_int
    for name in ("lame_init_params", "lame_close"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_int
    lib.lame_encode_buffer_ieee_float.argtypes = [
        ctypes.c_void_p,
        _FLOATS,
        _FLOATS,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    lib.lame_encode_buffer_ieee_float.restype = ctypes.c_int
    lib.lame_encode_flush.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.lame_encode_flush.restype = ctypes.c_int
    lib.lame_get_lametag_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.lame_get_lametag_frame.restype = ctypes.c_size_t
    return lib


class LameError(RuntimeError):
    """LAME refused the settings or failed to encode."""


class Lame:
    """One CBR MP3 encode. `encode` takes float planes (channels × n, float32) and returns
    the MP3 bytes LAME completed: whole frames, the first being the Xing/Info frame that
    `lametag` fills in at the end (write it over the file's first frame)."""

    def __init__(self, lib: ctypes.CDLL, *, rate: int, channels: int, bitrate_kbps: int) -> None:
        if channels not in (1, 2):
            raise ValueError("LAME encodes mono or stereo")
        self.lib = lib
        self.channels = channels
        self.gfp: Any = lib.lame_init()
        if not self.gfp:
            raise LameError("lame_init failed")
        settings = (
            ("lame_set_in_samplerate", rate),
            ("lame_set_out_samplerate", rate),
            ("lame_set_num_channels", channels),
            ("lame_set_mode", _MONO if channels == 1 else _JOINT_STEREO),
            ("lame_set_VBR", 0),  # vbr_off: CBR
            ("lame_set_brate", bitrate_kbps),
            ("lame_set_quality", _QUALITY),
            ("lame_set_bWriteVbrTag", 1),  # the Info frame: gapless playback, exact duration
        )
        for name, value in settings:
            if getattr(lib, name)(self.gfp, value) < 0:
                self.close()
                raise LameError(f"{name}({value}) refused")
        if lib.lame_init_params(self.gfp) < 0:
            self.close()
            raise LameError(f"LAME cannot encode {rate} Hz at {bitrate_kbps} kbit/s")
        self._buffer = ctypes.create_string_buffer(7200)

    def encode(self, planes: npt.NDArray[np.float32]) -> bytes:
        """MP3 bytes for `planes` (channels × n floats in [-1, 1])."""
        samples = planes.shape[1]
        if not samples:
            return b""
        left = np.ascontiguousarray(planes[0], dtype=np.float32)
        right = np.ascontiguousarray(planes[1], dtype=np.float32) if self.channels == 2 else left
        size = samples * 5 // 4 + 7200  # lame.h: worst case 1.25 × samples + 7200
        if len(self._buffer) < size:
            self._buffer = ctypes.create_string_buffer(size)
        written = self.lib.lame_encode_buffer_ieee_float(
            self.gfp,
            left.ctypes.data_as(_FLOATS),
            right.ctypes.data_as(_FLOATS),
            samples,
            self._buffer,
            len(self._buffer),
        )
        if written < 0:
            raise LameError(f"lame_encode_buffer_ieee_float failed ({written})")
        return self._buffer.raw[:written]

    def flush(self) -> bytes:
        """The last frames (the encoder's buffered samples, padded)."""
        written = self.lib.lame_encode_flush(self.gfp, self._buffer, len(self._buffer))
        if written < 0:
            raise LameError(f"lame_encode_flush failed ({written})")
        return self._buffer.raw[:written]

    def lametag(self) -> bytes:
        """The filled-in Xing/Info frame (frame count, encoder delay and padding), after
        `flush`."""
        buffer = ctypes.create_string_buffer(4096)
        size = self.lib.lame_get_lametag_frame(self.gfp, buffer, len(buffer))
        return buffer.raw[:size] if 0 < size <= len(buffer) else b""

    def close(self) -> None:
        if self.gfp:
            self.lib.lame_close(self.gfp)
            self.gfp = None
