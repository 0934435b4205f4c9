"""The multipart/form-data body of `POST /v1/tracks`, read as a stream of parts by the
uploads' reader (`control.uploads.form`): `audio`, `artwork` and `metadata` are file parts
with their own size limits (413 the moment one is crossed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from control.tracks.ingest import AUDIO_FIELD, file_limits
from control.uploads.form import FormField, form_fields
from mediaserver.config import SETTINGS


def track_form(request: web.Request) -> AsyncIterator[FormField]:
    settings = request.app[SETTINGS]
    return form_fields(
        request,
        settings.track_max_bytes,
        files=file_limits(settings),
        field_hint=AUDIO_FIELD,
    )
