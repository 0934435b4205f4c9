"""The Postman v2.1 collection, generated from the OpenAPI document (`control.openapi`).

Its requests run in `SCENARIO` order, so the collection works end to end on an empty
database (`newman run`, tests/integration/test_postman.py): register, log in (the test
script stores the tokens), register a stream, upload an MP3, build a playlist and a
podcast on it, subscribe, then delete it all. Every request sends its documented example
body and checks its documented success status. Ids come from what earlier requests
created: a test script stores every `*_id` of a response in the collection variable of
that name, which later paths and bodies use (`{{stream_id}}`).

Collection variables: `baseUrl`; `accessToken`, `refreshToken` (set by the login);
`relayToken` (the node's `RELAY_SERVICE_TOKEN`, for the heartbeat); `adminToken` (an
admin's access token, for the admin-only user list); `sourceUrl` and `streamKey` (a
SHOUTcast or Icecast server the node can reach, and its password); `customDomain`."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

#: Every operation, in the order the collection runs them (a test checks it covers all).
SCENARIO = (
    "system_healthz",
    "system_health",
    "system_readyz",
    "system_metrics",
    "system_openapi",
    "system_docs",
    "system_docs_init",
    "system_docs_asset",
    "auth_register",
    "auth_login",
    "auth_refresh",
    "users_get_me",
    "users_my_quota",
    "users_update_me",
    "users_list_users",
    "users_update_user",
    "users_audit_log",
    "users_resend_verification",
    "auth_verify_form",
    "auth_verify_submit",
    "auth_verify_email",
    "auth_password_reset",
    "auth_reset_form",
    "auth_reset_submit",
    "auth_password_reset_confirm",
    "profiles_put_profile",
    "profiles_put_avatar",
    "profiles_dj_page",
    "profiles_dj_avatar",
    "streams_register_stream",
    "streams_list_streams",
    "streams_get_stream",
    "streams_stream_heartbeat",
    "streams_stream_status",
    "nowplaying_now_playing",
    "nowplaying_now_playing_events",
    "nowplaying_icecast_status_json",
    "nowplaying_stream_history",
    "nowplaying_stream_events",
    "nowplaying_listen_m3u",
    "nowplaying_listen_pls",
    "pages_directory",
    "pages_station",
    "pages_embed",
    "pages_asset",
    "streams_rotate_source_password",
    "streams_set_ad_markers",
    "streams_get_ad_markers",
    "media_live_m3u8",
    "media_live_segment",
    "uploads_upload_audio",
    "uploads_get_upload",
    "uploads_list_uploads",
    "media_upload_manifest",
    "media_upload_manifest_head",
    "media_upload_segment",
    "media_upload_segment_head",
    "tracks_upload_track",
    "tracks_get_track",
    "tracks_patch_track",
    "tracks_track_master",
    "tracks_track_master_head",
    "tracks_track_rendition",
    "tracks_track_rendition_head",
    "tracks_track_segment",
    "tracks_track_segment_head",
    "tracks_track_waveform",
    "tracks_track_waveform_head",
    "tracks_track_artwork",
    "tracks_track_artwork_head",
    "tracks_track_stream",
    "tracks_track_stream_head",
    "tracks_delete_track",
    "playlists_create_playlist",
    "playlists_list_playlists",
    "playlists_get_playlist",
    "playlists_replace_playlist",
    "media_playlist_m3u8",
    "media_playlist_m3u8_head",
    "media_playlist_segment",
    "media_playlist_segment_head",
    "media_playlist_mp3",
    "analytics_stream_analytics",
    "analytics_playlist_analytics",
    "domains_register_domain",
    "domains_list_domains",
    "domains_get_domain",
    "podcasts_create_podcast",
    "podcasts_list_podcasts",
    "podcasts_update_podcast",
    "podcasts_add_episode",
    "podcasts_update_episode",
    "podcasts_get_podcast",
    "podcasts_private_feed_url",
    "catalog_list_tracks",
    "catalog_search_tracks",
    "catalog_playlist_directory",
    "catalog_podcast_directory",
    "media_podcast_feed",
    "media_podcast_feed_head",
    "media_episode_media",
    "media_episode_media_head",
    "media_domain_feed",
    "media_domain_feed_head",
    "media_domain_episode_media",
    "media_domain_episode_media_head",
    "monetization_create_plan",
    "monetization_list_plans",
    "monetization_subscribe",
    "monetization_list_subscriptions",
    "monetization_cancel_subscription",
    "monetization_stripe_webhook",
    "streams_update_stream",
    "media_live_mp3",
    "podcasts_delete_episode",
    "podcasts_delete_podcast",
    "domains_delete_domain",
    "playlists_delete_playlist",
    "uploads_delete_upload",
    "streams_delete_stream",
    "auth_logout",
    "users_delete_me",
    "users_delete_user",
)
#: Requests that poll (repeat themselves, 0.5 s apart, up to 60 times) while the server
#: answers the documented "not yet" status: processing uploads and playlists, a stream
#: whose first live segment is still being cut.
_POLL = {
    "uploads_get_upload": "pm.response.code === 200 && pm.response.json().status === 'processing'",
    "tracks_get_track": "pm.response.code === 200 && pm.response.json().status === 'processing'",
    "media_live_m3u8": "pm.response.code === 404",
    "media_playlist_m3u8": "pm.response.code === 409",
}
#: Documented errors a request accepts besides its success status, and why.
ACCEPTED_ERRORS = {
    # An endless MP3 stream cannot be a request that completes: it runs once the stream
    # has been disabled (`streams_update_stream`), and meets the documented 404.
    "media_live_mp3": (404,),
    # The collection registers a pulled stream (a SHOUTcast server): only pushed ones have
    # a source password.
    "streams_rotate_source_password": (422,),
    # The tokens of the account mails come by mail, which a collection does not read: the
    # example token meets the documented 400 (the pages' forms answer it as HTML).
    "auth_verify_email": (400,),
    "auth_verify_submit": (400,),
    "auth_password_reset_confirm": (400,),
    "auth_reset_submit": (400,),
    # The collection sends no image (its only sample file is an MP3), so no avatar either.
    "profiles_put_avatar": (400,),
    "profiles_dj_avatar": (404,),
    # The collection's one account was deleted by `users_delete_me` just before.
    "users_delete_user": (404,),
    # The collection's sample MP3 has no cover art, and the collection sends no image.
    "tracks_track_artwork": (404,),
    "tracks_track_artwork_head": (404,),
    # Stripe's webhook takes events Stripe signed: the collection cannot sign one, so it
    # meets the documented 400 (PAYMENT_PROVIDER=stripe), 404 (the stub) or 503 (none).
    "monetization_stripe_webhook": (400, 404, 503),
}
#: Query parameters a request sends (the others are listed, disabled): the live feeds end
#: after their opening snapshot, a request that completes.
_QUERY = {
    "nowplaying_now_playing_events": {"max_events": "1"},
    "nowplaying_stream_events": {"max_events": "1"},
    "catalog_search_tracks": {"q": "deep ho"},
}
#: Example values that name something of the test run rather than of the document.
_BODY_VARIABLES = {
    "shoutcast_url": "{{sourceUrl}}",
    "stream_key": "{{streamKey}}",
    "custom_domain": "{{customDomain}}",
    "hostname": "{{customDomain}}",
    "refresh_token": "{{refreshToken}}",
    "email": "{{email}}",
    "password": "{{password}}",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SAMPLE_MP3 = "sample.mp3"  # docs/sample.mp3, beside the collection (newman --working-dir docs)


def build_postman(document: dict[str, Any]) -> dict[str, Any]:
    """A Postman v2.1 collection of every operation of `document`, in `SCENARIO` order."""
    operations = {
        op["operationId"]: (path, method, op)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    items = [_item(*operations[name]) for name in SCENARIO if name in operations]
    missing = sorted(set(operations) - set(SCENARIO))
    items += [_item(*operations[name]) for name in missing]
    return {
        "info": {
            "name": "mediaserver API",
            "description": __doc__,
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "variable": [
            {"key": "baseUrl", "value": "http://127.0.0.1:8080"},
            {"key": "email", "value": "dj@example.com"},
            {"key": "password", "value": "Sup3rSecret"},
            {"key": "accessToken", "value": ""},
            {"key": "refreshToken", "value": ""},
            {"key": "adminToken", "value": ""},
            {"key": "relayToken", "value": ""},
            {"key": "sourceUrl", "value": "http://127.0.0.1:8000"},
            {"key": "streamKey", "value": "changeme"},
            {"key": "customDomain", "value": "podcasts.example.com"},
            {"key": "name", "value": "swagger-ui.css"},
            {"key": "asset", "value": "pages.css"},
        ],
        "item": items,
    }


def _item(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    name = op["operationId"]
    segments = [re.sub(r"\{(\w+)\}", r"{{\1}}", part) for part in path.strip("/").split("/")]
    raw_path = "/".join(segments)
    sent = _QUERY.get(name, {})
    query = [
        {"key": p["name"], "value": sent.get(p["name"], str(p["example"]))}
        | ({} if p["name"] in sent else {"disabled": True})
        for p in op.get("parameters", [])
        if p["in"] == "query"
    ]
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": _headers(op),
        "url": {
            "raw": "{{baseUrl}}/" + raw_path + ("?" + urlencode(sent) if sent else ""),
            "host": ["{{baseUrl}}"],
            "path": segments,
            **({"query": query} if query else {}),
        },
        "description": op.get("description", ""),
    }
    body = _body(op)
    if body is not None:
        request["body"] = body
    return {"name": f"{name}: {op['summary']}", "request": request, "event": _events(name, op)}


def _headers(op: dict[str, Any]) -> list[dict[str, Any]]:
    headers = []
    security = op.get("security") or []
    schemes = {scheme for requirement in security for scheme in requirement}
    if "relayToken" in schemes:
        headers.append({"key": "Authorization", "value": "Bearer {{relayToken}}"})
    elif "bearerAuth" in schemes:
        token = "adminToken" if "role `admin`" in op.get("description", "") else "accessToken"
        headers.append({"key": "Authorization", "value": f"Bearer {{{{{token}}}}}"})
    for param in op.get("parameters", []):
        if param["in"] == "header" and param["name"] == "Host":
            headers.append({"key": "Host", "value": "{{customDomain}}"})
    if "application/json" in op.get("requestBody", {}).get("content", {}):
        headers.append({"key": "Content-Type", "value": "application/json"})
    return headers


def _body(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        example = _variables(content["application/json"]["example"])
        text = json.dumps(example, indent=2, ensure_ascii=False)
        return {"mode": "raw", "raw": text, "options": {"raw": {"language": "json"}}}
    if "multipart/form-data" in content:
        form = content["multipart/form-data"]
        fields = []
        for key, value in form["example"].items():
            if form["schema"]["properties"][key].get("format") == "binary":
                fields.append({"key": key, "type": "file", "src": _SAMPLE_MP3})
            else:
                fields.append({"key": key, "type": "text", "value": str(value)})
        return {"mode": "formdata", "formdata": fields}
    return None


def _variables(value: Any, key: str | None = None) -> Any:
    """The example, with ids and run-specific values as collection variables."""
    if isinstance(value, dict):
        return {k: _variables(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_variables(v, key) for v in value]
    if key in _BODY_VARIABLES:
        return _BODY_VARIABLES[key]
    if key is not None and key.endswith("_id") and isinstance(value, str) and _UUID.match(value):
        return "{{" + key + "}}"
    return value


def _events(name: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    status = int(next(iter(op["responses"])))
    accepted = [status, *ACCEPTED_ERRORS.get(name, ())]
    lines = []
    if name in _POLL:
        lines += [
            "const polls = Number(pm.collectionVariables.get('polls') || 0);",
            f"if (({_POLL[name]}) && polls < 60) {{",
            "  pm.collectionVariables.set('polls', polls + 1);",
            "  postman.setNextRequest(pm.info.requestName);",
            "  setTimeout(() => {}, 500);",
            "  return;",
            "}",
            "pm.collectionVariables.set('polls', 0);",
        ]
    if len(accepted) == 1:
        lines.append(f"pm.test('status {status}', () => pm.response.to.have.status({status}));")
    else:
        lines.append(
            f"pm.test('status {' or '.join(map(str, accepted))}', "
            f"() => pm.expect(pm.response.code).to.be.oneOf({accepted}));"
        )
    content = op["responses"][str(status)].get("content", {})
    if "application/json" in content:
        lines += [
            "const body = pm.response.json();",
            "for (const [key, value] of Object.entries(body)) {",
            "  if (key.endsWith('_id') && typeof value === 'string') "
            "pm.collectionVariables.set(key, value);",
            "}",
        ]
    lines += _EXTRA.get(name, [])
    wrapped = ["(() => {", *(f"  {line}" for line in lines), "})();"]
    return [{"listen": "test", "script": {"type": "text/javascript", "exec": wrapped}}]


#: What a request's test script stores for later ones, besides the ids.
_EXTRA = {
    "auth_login": [
        "pm.collectionVariables.set('accessToken', body.access_token);",
        "pm.collectionVariables.set('refreshToken', body.refresh_token);",
    ],
    "auth_refresh": [
        "pm.collectionVariables.set('accessToken', body.access_token);",
        "pm.collectionVariables.set('refreshToken', body.refresh_token);",
    ],
    "media_live_m3u8": [
        "const seq = pm.response.text().match(/hls\\/(\\d+)\\.ts/);",
        "if (seq) pm.collectionVariables.set('seq', seq[1]);",
    ],
    "playlists_get_playlist": [
        "if (body.tracks && body.tracks.length) "
        "pm.collectionVariables.set('track_id', body.tracks[0].track_id);",
    ],
    "tracks_track_master": [
        "const dir = pm.response.text().match(/^([a-z0-9_]+)\\/index\\.m3u8/m);",
        "if (dir) pm.collectionVariables.set('hls_dir', dir[1]);",
    ],
    "tracks_track_rendition": [
        "const name = pm.response.text().match(/segment\\d+\\.(ts|m4s|mp4)/);",
        "if (name) pm.collectionVariables.set('segment', name[0]);",
    ],
    "media_upload_manifest": [
        "const name = pm.response.text().match(/segment\\d+\\.ts/);",
        "if (name) pm.collectionVariables.set('segment', name[0]);",
    ],
    "media_playlist_m3u8": [
        "const uri = pm.response.text().match(/hls\\/[^/]+\\/(segment\\d+\\.ts)/);",
        "if (uri) pm.collectionVariables.set('segment', uri[1]);",
    ],
}
