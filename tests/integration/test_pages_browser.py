"""The pages in a real browser (Debian's Chromium through Playwright): a listener opens `/`,
sees the live station with its title, opens it, presses Play and hears it (the `<audio>`
element reaches `playing` and its time advances), and sees a new title within 5 s of the
source sending it. No console error (a CSP violation is one), no request leaving the node.
Screenshots of the pages go to a temporary directory; with `UPDATE_SCREENSHOTS=1` to
`docs/screenshots/`, the ones the README shows (so an ordinary run leaves the tree clean)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from tests.accounts import user_headers
from tests.browser import chromium
from tests.live import connected, register_stream
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fake_servers

pytestmark = pytest.mark.timeout(180)
SCREENSHOTS = (
    Path(__file__).parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "mediaserver-screenshots"
)
PHONE = {"width": 360, "height": 740}


@pytest.fixture
async def node(make_client):
    return await make_client(hls_segment_seconds=2)


async def test_a_listener_picks_a_station_and_hears_it_with_live_titles(
    node, fake_servers, aiohttp_server
):
    source = await fake_servers(IcecastSource, title="Artist One - Opening")
    _, dj = await user_headers(node)
    profile = {"stage_name": "DJ Example", "bio": "Deep house from Lisbon, every Friday."}
    assert (await node.put("/v1/users/me/profile", json=profile, headers=dj)).status == 200
    stream_id = await register_stream(
        node, source, dj, description="Deep house until late: <b>no markup</b> here"
    )
    await connected(node, stream_id)
    home = str(node.make_url("/"))
    origin = urlsplit(home).netloc
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1024, "height": 720})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: requests.append(r.url))

        await page.goto(home)
        station = page.locator(f'li[data-stream-id="{stream_id}"]')
        await station.locator(".title", has_text="Artist One - Opening").wait_for(timeout=10_000)
        assert await station.locator(".name").inner_text() == "Friday Night"
        await page.screenshot(path=str(SCREENSHOTS / "directory.png"))

        # Keyboard: the station's link is reachable with Tab and opens with Enter.
        await _tab_to(page, f'a[href="/stations/{stream_id}"]')
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/stations/{stream_id}")
        assert await page.locator("h1").inner_text() == "Friday Night"
        assert "<b>no markup</b>" in await page.locator(".description").inner_text()

        await page.click("#play")
        await page.wait_for_function(
            "() => { const a = document.getElementById('audio');"
            " return !a.paused && a.readyState >= 3 && a.currentTime > 0; }",
            timeout=20_000,
        )
        first = await page.evaluate("document.getElementById('audio').currentTime")
        await page.wait_for_function(
            "start => document.getElementById('audio').currentTime > start + 1",
            arg=first,
            timeout=10_000,
        )
        assert await page.locator("#play").inner_text() == "Stop"
        # This listener is counted, and the count reaches the page over the feed.
        await page.wait_for_function(
            "() => Number(document.getElementById('listeners').textContent) >= 1",
            timeout=15_000,
        )

        source.set_title("Artist Two - Follow Up")
        changed = time.monotonic()
        await page.locator("#now-title", has_text="Artist Two - Follow Up").wait_for(timeout=5_000)
        seen_after = time.monotonic() - changed
        assert "Artist Two - Follow Up" in await page.locator("#history").inner_text()
        await page.screenshot(path=str(SCREENSHOTS / "station.png"), full_page=True)

        await page.click("#play")  # Stop
        await page.wait_for_function("() => document.getElementById('audio').paused")

        await page.set_viewport_size(PHONE)
        await page.reload()
        await page.locator("#now-title", has_text="Artist Two").wait_for()
        width = await page.evaluate("document.documentElement.scrollWidth")
        await page.screenshot(path=str(SCREENSHOTS / "station-phone.png"), full_page=True)
        await page.goto(home)
        await station.locator(".title", has_text="Artist Two").wait_for()
        width = max(width, await page.evaluate("document.documentElement.scrollWidth"))
        await page.screenshot(path=str(SCREENSHOTS / "directory-phone.png"))

        # The MP3 link opened in a tab of its own plays in the browser's own player.
        tab = await browser.new_page()
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await tab.goto(str(node.make_url(f"/v1/streams/{stream_id}/live.mp3")), wait_until="commit")
        await tab.wait_for_function(
            "() => { const m = document.querySelector('video, audio');"
            " return m !== null && m.currentTime > 0.5; }",
            timeout=20_000,
        )
        await tab.close()

        embed = await browser.new_page(viewport={"width": 400, "height": 160})
        embed.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await embed.goto(str(node.make_url(f"/embed/{stream_id}")))
        await embed.locator("#now-title", has_text="Artist Two").wait_for()
        await embed.screenshot(path=str(SCREENSHOTS / "embed.png"))
        await embed.close()

        # A DJ's own site (another origin) frames the embed, and it plays there.
        site = await _dj_site(aiohttp_server, str(node.make_url(f"/embed/{stream_id}")))
        framing = await browser.new_page()
        framing.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await framing.goto(str(site.make_url("/")))
        framed = framing.frame_locator("iframe")
        await framed.locator("#now-title", has_text="Artist Two").wait_for(timeout=10_000)
        await framed.locator("#play").click()
        await framed.locator("#play", has_text="Stop").wait_for(timeout=20_000)
        await framing.close()
        await page.close()

    print(f"\ntitle change shown on the station page {seen_after:.2f} s after the source sent it")
    assert width <= PHONE["width"]  # no sideways scrolling on a phone
    assert errors == []
    assert requests and all(urlsplit(r).netloc == origin for r in requests), requests


async def test_a_station_coming_on_air_appears_on_the_open_directory(node, fake_servers):
    async with chromium() as browser:
        page = await browser.new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(str(node.make_url("/")))
        assert await page.locator("#empty").is_visible()

        # Markup in what the source and the DJ send is shown as text (textContent).
        source = await fake_servers(IcecastSource, title="Late Artist - <b>Night</b> Tune")
        _, dj = await user_headers(node)
        stream_id = await register_stream(node, source, dj, name="Late <i>Show</i>")
        station = page.locator(f'li[data-stream-id="{stream_id}"]')
        await station.locator(".title", has_text="Late Artist - <b>Night</b> Tune").wait_for(
            timeout=15_000
        )
        assert await station.locator(".name").inner_text() == "Late <i>Show</i>"
        assert await station.locator("b, i").count() == 0
        assert await page.locator("#empty").is_hidden()
        await page.close()
    assert errors == []


async def _dj_site(aiohttp_server, embed_url: str):
    """A DJ's web site on another origin, with the embed in an iframe."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My site</title>'
        f'<link rel="icon" href="data:,"></head><body><h1>My radio</h1>'
        f'<iframe title="Live player" src="{embed_url}" width="400" height="160"></iframe>'
        "</body></html>"
    )

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    return await aiohttp_server(app)


async def _tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the keyboard")
