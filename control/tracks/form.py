"""The multipart/form-data body of `POST /v1/tracks`, read as a stream of parts by the
uploads' reader (`control.uploads.form`): `audio`, `artwork` and `metadata` are file parts
with their own size limits (413 the moment one is crossed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from control.tracks.ingest import AUDIO_FIELD, file_limits
from control.uploads.form import FormField, form_fields
from mediaserver.config import SETTINGS


def track_form(request: web.Request, audio_max: int) -> AsyncIterator[FormField]:
    """The form, its audio part at most `audio_max` bytes (the caller's plan's limit)."""
    settings = request.app[SETTINGS]
    return form_fields(
        request,
        audio_max,
        files=file_limits(settings, audio_max),
        field_hint=AUDIO_FIELD,
    )
