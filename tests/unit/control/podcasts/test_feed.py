"""The feed writer: well-formed for any text a request model accepts, namespaces declared,
and the small formats (RFC 2822 dates, HH:MM:SS, Podcasting 2.0 guid) exact."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta, timezone

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.podcasts.feed import (
    NAMESPACES,
    Channel,
    Item,
    feed_guid,
    hms,
    html_paragraphs,
    normalize_newlines,
    relocate,
    render_feed,
    rfc2822,
    xml_safe,
)
from tests.podcasts import HOSTILE, parse_xml

WHEN = datetime(2025, 6, 10, 14, 0, tzinfo=UTC)


def channel(**changes) -> Channel:
    values = {
        "title": "Tech DJ Podcast",
        "description": "Weekly interviews.",
        "link": "https://api.example.com/v1/podcasts/1",
        "self_url": "https://api.example.com/v1/podcasts/1/rss.xml",
        "language": "en-us",
        "author": "DJ Example",
        "image_url": "https://cdn.example.com/cover.jpg",
        "category": "Health & Fitness",
        "explicit": False,
        "podcast_type": "episodic",
        "owner_name": "DJ Example",
        "owner_email": "dj@example.com",
        "guid": uuid.UUID(int=1),
        "last_build": WHEN,
    }
    values.update(changes)
    return Channel(**values)


def item(**changes) -> Item:
    values = {
        "guid": str(uuid.UUID(int=2)),
        "title": "Episode 1",
        "description": "Set and interview.",
        "enclosure_url": "https://api.example.com/e.mp3?a=1&b=2",
        "length": 57_600_000,
        "published": WHEN,
        "duration_seconds": 3600,
        "episode_number": 1,
        "season": None,
        "episode_type": "full",
        "explicit": True,
    }
    values.update(changes)
    return Item(**values)


def test_document_shape():
    body = render_feed(channel(), [item()])
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<rss")
    for prefix, uri in NAMESPACES.items():
        assert f'xmlns:{prefix}="{uri}"'.encode() in body
    root = parse_xml(body)
    category = root.find("channel/{http://www.itunes.com/dtds/podcast-1.0.dtd}category")
    assert category is not None and category.get("text") == "Health & Fitness"
    enclosure = root.find("channel/item/enclosure")
    assert enclosure is not None and enclosure.get("url") == "https://api.example.com/e.mp3?a=1&b=2"
    assert root.find("channel/item/{http://www.itunes.com/dtds/podcast-1.0.dtd}season") is None
    assert not feedparser.parse(body).bozo


def test_an_empty_feed_is_valid():
    parsed = feedparser.parse(render_feed(channel(), []))
    assert not parsed.bozo and parsed.entries == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00"), (59, "00:00:59"), (3725, "01:02:05"), (360_000, "100:00:00")],
)
def test_hms(seconds, text):
    assert hms(seconds) == text


def test_rfc2822_is_in_gmt():
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert rfc2822(local) == "Tue, 10 Jun 2025 14:00:00 GMT"


def test_feed_guid_matches_the_podcasting_2_0_example():
    # https://podcastindex.org/namespace/1.0#guid
    expected = uuid.UUID("917393e3-1b1e-5cef-ace4-edaa54e1f810")
    assert feed_guid("https://mp3s.nashownotes.com/pc20rss.xml") == expected
    assert feed_guid("http://mp3s.nashownotes.com/pc20rss.xml/") == expected


def test_xml_safe():
    assert xml_safe("tab\tnew\nline\r 🎧 \ufffd")
    for bad in ("\x00", "\x07", "\x1b[0m", "\ufffe", "\ud800"):
        assert not xml_safe(f"a{bad}b")


def test_paragraphs():
    assert html_paragraphs("a < b\nc\n\n\nd & e") == "<p>a &lt; b<br>c</p><p>d &amp; e</p>"


safe_text = st.text(max_size=60).filter(xml_safe).map(normalize_newlines)


@settings(max_examples=200, deadline=None)
@given(title=safe_text, description=safe_text)
def test_any_accepted_text_round_trips(title, description):
    body = render_feed(
        channel(title=title, description=description),
        [item(title=title, description=description)],
    )
    root = parse_xml(body)
    assert root.findtext("channel/title") == title
    assert root.findtext("channel/item/title") == title
    assert html.unescape(root.findtext("channel/item/description") or "") == description


def test_relocating_to_the_same_place_changes_nothing():
    body = render_feed(channel(), [item(), item(guid=str(uuid.UUID(int=3)))])
    assert relocate(body, channel().self_url, lambda _guid, url: url) == body


def test_relocate_moves_self_and_the_enclosures_it_is_asked_to():
    ours, theirs = str(uuid.UUID(int=2)), str(uuid.UUID(int=3))
    body = render_feed(
        channel(title=HOSTILE),
        [item(guid=ours), item(guid=theirs, enclosure_url="https://cdn.example.com/x.mp3")],
    )

    def moved(guid: str, url: str) -> str:
        return (
            f"https://pod.example.com/episodes/{guid}/media.mp3?grant=a.1&b"
            if guid == ours
            else url
        )

    root = parse_xml(relocate(body, "https://pod.example.com/rss.xml?grant=a.1&b", moved))
    link = root.find("channel/{http://www.w3.org/2005/Atom}link")
    assert link is not None and link.get("href") == "https://pod.example.com/rss.xml?grant=a.1&b"
    urls = [e.get("url") for e in root.iterfind("channel/item/enclosure")]
    assert urls == [moved(ours, ""), "https://cdn.example.com/x.mp3"]
    assert root.findtext("channel/title") == HOSTILE
    assert not feedparser.parse(relocate(body, "https://x.example/rss.xml", moved)).bozo
