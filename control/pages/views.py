"""The pages' HTML: a directory of stations, a station page, an embeddable player and a 404.

Every text from a user (stream names, titles, bios, plan names) goes through `html.escape`
here, and the pages' scripts only ever set `textContent`: no user text is markup. Links
are relative (`/v1/streams/…`), so the page's own origin serves them (CSP `'self'`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape

from control.monetization.schemas import PlanOut
from control.nowplaying.schemas import SongOut
from control.pages.service import Directory, Station
from control.profiles.schemas import DjPage
from control.streams.schemas import StreamDetail, StreamOut

SITE = "mediaserver"
#: A page of one station (`station_page`, `embed_page`).
StationRenderer = Callable[[Station], str]
NOTHING_PLAYING = "—"
# No icon to fetch (a browser asks for /favicon.ico otherwise: a 404 in its console).
_HEAD = '<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/pages.css">'
_INTERVALS = {"monthly": "month", "yearly": "year"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def document(title: str, main: str, script: str | None, *, body_class: str = "") -> str:
    """A whole page: skip link, banner, the main landmark, footer; one style sheet and at
    most one module script."""
    module = f'<script type="module" src="/assets/{script}"></script>' if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>{_HEAD}"
        f"{module}</head>\n"
        f'<body class="{_e(body_class)}">'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header class="banner"><a class="home" href="/">{SITE}</a>'
        '<nav aria-label="Site"><a href="/">Stations</a> <a href="/docs">API</a></nav>'
        "</header>\n"
        f'<main id="main" tabindex="-1">{main}</main>\n'
        '<footer class="foot"><p>Audio streaming for DJs.</p></footer></body></html>\n'
    )


def directory_page(directory: Directory) -> str:
    filtered = directory.genre is not None or directory.q is not None
    items = "".join(_station_item(s) for s in directory.stations)
    empty = "No station matches." if filtered else "No station is on air right now."
    hidden = " hidden" if directory.stations else ""
    main = (
        "<h1>Stations on air</h1>"
        f"{_filters(directory)}"
        f'<p id="empty" class="empty"{hidden}>{empty}</p>'
        f'<ul id="stations" class="stations" data-filtered="{str(filtered).lower()}">'
        f"{items}</ul>"
    )
    return document(f"Stations on air — {SITE}", main, "directory.js")


def _filters(directory: Directory) -> str:
    options = ['<option value="">All genres</option>']
    for genre in directory.genres:
        chosen = " selected" if genre == directory.genre else ""
        options.append(f'<option value="{_e(genre)}"{chosen}>{_e(genre)}</option>')
    return (
        '<form class="filters" method="get" action="/" role="search">'
        '<label for="genre">Genre</label>'
        f'<select id="genre" name="genre">{"".join(options)}</select>'
        '<label for="q">Search</label>'
        f'<input id="q" name="q" type="search" value="{_e(directory.q or "")}" maxlength="100">'
        '<button type="submit">Filter</button></form>'
    )


def _station_item(stream: StreamOut) -> str:
    genre = f'<p class="genre">{_e(stream.genre)}</p>' if stream.genre else ""
    return (
        f'<li class="station" data-stream-id="{stream.stream_id}">'
        f'<h2><a class="name" href="/stations/{stream.stream_id}">{_e(stream.name)}</a></h2>'
        f"{genre}"
        '<p class="now"><span class="label">Now playing:</span> '
        f'<span class="title">{_e(stream.current_title or NOTHING_PLAYING)}</span></p>'
        f'<p class="count"><span class="listeners">{stream.listeners}</span> listening</p>'
        "</li>"
    )


def station_page(station: Station) -> str:
    stream = station.stream
    on_air = "On air" if stream.on_air else "Off air"
    about = "".join(
        f'<p class="{cls}">{_e(text)}</p>'
        for cls, text in (("genre", stream.genre), ("description", stream.description))
        if text
    )
    main = (
        f'<article class="station-page" data-stream-id="{stream.stream_id}" '
        f'data-on-air="{str(stream.on_air).lower()}">'
        f'<h1 class="name">{_e(stream.name)}</h1>'
        f'<p class="status" id="status">{on_air}</p>{about}'
        f"{_now_playing(stream)}{_listen(station)}{_history(station.songs)}{_dj(station.dj)}"
        "</article>"
    )
    return document(f"{stream.name} — {SITE}", main, "station.js")


def _now_playing(stream: StreamDetail) -> str:
    return _section(
        "now",
        "Now playing",
        f'<p id="now-title" class="title" aria-live="polite">'
        f"{_e(stream.current_title or NOTHING_PLAYING)}</p>"
        f'<p class="count"><span id="listeners">{stream.listeners}</span> listening</p>',
    )


def _listen(station: Station) -> str:
    stream = station.stream
    base = f"/v1/streams/{stream.stream_id}"
    if station.paywalled:
        body = _paywall(station.plans or [], station.plans_url)
    else:
        body = _player(f"{base}/live.mp3", stream.on_air) + (
            '<p class="apps"><label for="hls-url">HLS link for apps</label>'
            f'<input id="hls-url" type="text" readonly value="{_e(stream.live_hls_url)}">'
            '<button id="copy-hls" type="button">Copy link</button>'
            '<span id="copied" role="status"></span></p>'
            f'<p class="files">Open in your player: <a href="{base}/listen.m3u">M3U</a> '
            f'<a href="{base}/listen.pls">PLS</a></p>'
        )
    return _section("listen", "Listen", body)


def _section(key: str, heading: str, body: str) -> str:
    """A section named by its heading (a region landmark for screen readers)."""
    return (
        f'<section class="{key}" aria-labelledby="{key}-h">'
        f'<h2 id="{key}-h">{heading}</h2>{body}</section>'
    )


def _player(mp3: str, on_air: bool) -> str:
    disabled = "" if on_air else " disabled"
    offline = "" if not on_air else " hidden"
    return (
        f'<div class="player" data-src="{_e(mp3)}">'
        f'<button class="play" id="play" type="button"{disabled}>Play</button>'
        '<audio id="audio" preload="none" controls aria-label="Live audio"></audio>'
        f'<p class="offline" id="offline"{offline}>This station is off air: come back later.</p>'
        "</div>"
    )


def _paywall(plans: list[PlanOut], plans_url: str) -> str:
    items = "".join(
        f'<li><span class="plan">{_e(p.name)}</span>: '
        f"{p.price_cents / 100:.2f} {_e(p.currency.upper())} "
        f"per {_INTERVALS.get(p.billing_interval, p.billing_interval)}</li>"
        for p in plans
    )
    offer = f"<ul class=plans>{items}</ul>" if plans else "<p>No plan is on sale yet.</p>"
    return (
        '<div class="paywall" id="paywall"><p><strong>Subscribers only.</strong> '
        "Listening needs a subscription to one of these plans:</p>"
        f'{offer}<p><a href="{_e(plans_url)}">The plans (JSON)</a></p></div>'
    )


def _history(songs: list[SongOut]) -> str:
    items = "".join(
        f'<li><time datetime="{s.started_at.isoformat()}">{s.started_at:%H:%M}</time> '
        f"{_e(s.text)}</li>"
        if s.started_at
        else f"<li>{_e(s.text)}</li>"
        for s in songs
    )
    listing = f'<ol id="history" class="songs">{items}</ol>' if songs else "<p>Nothing yet.</p>"
    return _section("history", "Recently played", listing)


def _dj(dj: DjPage | None) -> str:
    if dj is None:
        return ""
    avatar = (
        f'<img class="avatar" src="/v1/djs/{dj.dj_id}/avatar.jpg" alt="" width="96" height="96">'
        if dj.avatar_url
        else ""
    )
    bio = f'<p class="bio">{_e(dj.bio)}</p>' if dj.bio else ""
    podcasts = _links("Podcasts", ((p.feed_url, p.title) for p in dj.podcasts))
    playlists = _links(
        "Playlists", ((f"/v1/playlists/{p.playlist_id}/stream.mp3", p.title) for p in dj.playlists)
    )
    return _section(
        "dj",
        "The DJ",
        f'{avatar}<p class="dj-name"><a href="/v1/djs/{dj.dj_id}">{_e(dj.stage_name)}</a></p>'
        f"{bio}{podcasts}{playlists}",
    )


def _links(heading: str, links: Iterable[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{_e(url)}">{_e(text)}</a></li>' for url, text in links)
    return f"<h3>{heading}</h3><ul>{items}</ul>" if items else ""


def embed_page(station: Station) -> str:
    """The embeddable player: a play button, the station's name and title, a link out."""
    stream = station.stream
    link = f'<a href="/stations/{stream.stream_id}" target="_blank" rel="noopener">'
    if station.paywalled:
        control = f"<p>Subscribers only: {link}see the plans</a>.</p>"
    else:
        control = _player(f"/v1/streams/{stream.stream_id}/live.mp3", stream.on_air)
    main = (
        f'<div class="embed" data-stream-id="{stream.stream_id}" '
        f'data-on-air="{str(stream.on_air).lower()}">'
        f'<p class="name">{link}{_e(stream.name)}</a></p>'
        f'<p id="now-title" class="title" aria-live="polite">'
        f"{_e(stream.current_title or NOTHING_PLAYING)}</p>{control}</div>"
    )
    return embed_document(stream.name, main)


def embed_document(title: str, main: str) -> str:
    """The embed's page: no banner or footer (it sits inside someone else's page)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>{_HEAD}"
        '<script type="module" src="/assets/embed.js"></script></head>\n'
        f'<body class="embedded"><main id="main">{main}</main></body></html>\n'
    )


def not_found_page(message: str) -> str:
    main = f'<h1>{_e(message)}</h1><p><a href="/">See the stations on air</a>.</p>'
    return document(f"{message} — {SITE}", main, None)
