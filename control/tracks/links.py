"""Where a track's media is served: one place for every URL the track routes, the catalog
search and the directory hand out (all under `/v1/tracks/{track_id}/`)."""

from __future__ import annotations

import uuid

from hls.ladder import ARTWORK_NAME, INDEX_NAME, MASTER_NAME, WAVEFORM_NAME


def track_url(origin: str, track_id: uuid.UUID) -> str:
    return f"{origin}/v1/tracks/{track_id}"


def master_url(origin: str, track_id: uuid.UUID) -> str:
    """The adaptive master playlist (every HLS rendition, `EXT-X-STREAM-INF`)."""
    return f"{track_url(origin, track_id)}/{MASTER_NAME}"


def rendition_hls_url(origin: str, track_id: uuid.UUID, hls_dir: str) -> str:
    return f"{track_url(origin, track_id)}/{hls_dir}/{INDEX_NAME}"


def stream_url(origin: str, track_id: uuid.UUID, quality: str, fmt: str) -> str:
    """One rendition as a single progressive file, with byte ranges."""
    return f"{track_url(origin, track_id)}/stream?quality={quality}&format={fmt}"


def waveform_url(origin: str, track_id: uuid.UUID) -> str:
    return f"{track_url(origin, track_id)}/{WAVEFORM_NAME}"


def artwork_url(origin: str, track_id: uuid.UUID) -> str:
    return f"{track_url(origin, track_id)}/{ARTWORK_NAME}"
