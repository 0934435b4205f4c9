"""The pages' HTML (`control.pages.views`): whatever a DJ, a source or a plan's owner typed
is text on the page, never markup — in every field a page shows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from control.monetization.schemas import PlanOut
from control.nowplaying.schemas import SongOut
from control.pages.service import Directory, Station
from control.pages.views import directory_page, embed_page, not_found_page, station_page
from control.profiles.schemas import DjPage, DjPlaylist, DjPodcast
from control.streams.schemas import StreamDetail

HOSTILE = "</p><script>alert(1)</script><a href=\"javascript:x\" onclick='y'>"
NOW = datetime(2026, 12, 7, 21, 30, tzinfo=UTC)
STREAM_ID = uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")
OWNER = uuid.UUID("6b1d2a4e-0000-4000-8000-000000000001")


def stream(**changes: object) -> StreamDetail:
    base = f"https://radio.example.com/v1/streams/{STREAM_ID}"
    fields: dict[str, object] = {
        "stream_id": STREAM_ID,
        "name": HOSTILE,
        "genre": HOSTILE,
        "description": HOSTILE,
        "visibility": "public",
        "monetization_enabled": False,
        "listeners": 3,
        "on_air": True,
        "current_title": HOSTILE,
        "live_mp3_url": f"{base}/live.mp3",
        "live_hls_url": f"{base}/live.m3u8",
        "owner_id": OWNER,
        "server_kind": "icecast2",
        "enabled": True,
        "created_at": NOW,
        "play_urls": None,
    }
    return StreamDetail.model_validate({**fields, **changes})


def dj() -> DjPage:
    return DjPage(
        dj_id=OWNER,
        stage_name=HOSTILE,
        bio=HOSTILE,
        genres=[HOSTILE],
        links=[],
        avatar_url="https://radio.example.com/v1/djs/x/avatar.jpg",
        updated_at=NOW,
        streams=[],
        playlists=[DjPlaylist(playlist_id=uuid.uuid4(), title=HOSTILE)],
        podcasts=[
            DjPodcast(podcast_id=uuid.uuid4(), title=HOSTILE, feed_url="https://x.example/rss")
        ],
    )


def plan() -> PlanOut:
    return PlanOut(
        plan_id=uuid.uuid4(),
        owner_id=OWNER,
        name=HOSTILE,
        price_cents=999,
        currency="eur",
        billing_interval="yearly",
        features=[],
        stripe_product_id="prod_x",
        stripe_price_id="price_x",
        created_at=NOW,
        platform_wide=False,
    )


def song() -> SongOut:
    return SongOut(text=HOSTILE, artist=None, title=HOSTILE, started_at=NOW)


def assert_inert(html: str) -> None:
    assert "<script>" not in html and "onclick='y'" not in html
    assert 'href="javascript:' not in html
    # At most one script: the page's own module from /assets/.
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) <= 1 and all('type="module" src="/assets/' in t for t in scripts)
    assert (
        "&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&quot;javascript:x&quot;" in html
    )


def test_a_free_station_page_shows_every_field_as_text():
    free = stream(play_urls={"mp3": "m", "hls": "h", "expires_at": None})
    html = station_page(Station(free, dj(), [song()], None, "https://x.example/plans"))
    assert_inert(html)
    assert html.count("&lt;script&gt;") >= 8  # name, genre, description, title, song, DJ ×3
    assert '<time datetime="2026-12-07T21:30:00+00:00">21:30</time>' in html
    assert f'data-src="/v1/streams/{STREAM_ID}/live.mp3"' in html
    assert "/stream.mp3" in html and 'href="https://x.example/rss"' in html


def test_a_paid_station_page_names_its_plans_as_text():
    html = station_page(Station(stream(), None, [], [plan()], "https://x.example/plans"))
    assert_inert(html)
    assert "9.99 EUR per year" in html and "live.mp3" not in html


def test_the_directory_and_the_embed_show_text_as_text():
    listed = Directory([stream()], [HOSTILE], HOSTILE, HOSTILE)
    html = directory_page(listed)
    assert_inert(html)
    assert 'data-filtered="true"' in html
    embed = embed_page(Station(stream(), None, [], None, "p"))
    assert_inert(embed)
    assert "<header" not in embed  # the embed sits in another site's page


def test_the_404_page_links_home():
    html = not_found_page("No such station")
    assert "<h1>No such station</h1>" in html and '<a href="/">' in html
    assert "<script" not in html
