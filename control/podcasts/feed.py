"""The podcast feed: RSS 2.0 with the Apple Podcasts (`itunes`), Podcasting 2.0
(`podcast`), Atom and `content` namespaces, built with ElementTree (never by string
concatenation). Sans-IO: data in, bytes out; time comes in as arguments.

Text handling: titles and names are plain text (RSS 2.0); `description` is "entity-encoded
HTML" (RSS 2.0 spec), so plain-text descriptions are HTML-escaped and ElementTree then
XML-escapes the result; `content:encoded` carries the same text as HTML paragraphs.
ElementTree cannot write characters XML 1.0 forbids, so request models refuse them
(`xml_safe`) and normalise line ends (`normalize_newlines`): any user text yields a
well-formed feed that reads back exactly.
"""

from __future__ import annotations

import html
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
NAMESPACES = {"itunes": ITUNES, "podcast": PODCAST, "atom": ATOM, "content": CONTENT}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

#: Podcasting 2.0 `podcast:guid`: uuidv5 of the feed URL in this namespace.
GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
MEDIA_TYPE = "audio/mpeg"


def xml_safe(text: str) -> bool:
    """Whether every character of `text` is allowed in XML 1.0 (§2.2 `Char`)."""
    return all(
        c in "\t\n\r"
        or "\x20" <= c <= "\ud7ff"
        or "\ue000" <= c <= "\ufffd"
        or "\U00010000" <= c <= "\U0010ffff"
        for c in text
    )


def normalize_newlines(text: str) -> str:
    """XML parsers turn CR and CRLF into LF (XML 1.0 §2.11): store text the way it reads."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def feed_guid(feed_url: str) -> uuid.UUID:
    """Podcasting 2.0 `podcast:guid`: uuidv5 of the feed URL without its scheme and
    trailing slashes (https://podcastindex.org/namespace/1.0#guid)."""
    bare = feed_url.split("://", 1)[-1].rstrip("/")
    return uuid.uuid5(GUID_NAMESPACE, bare)


@dataclass(frozen=True, slots=True)
class Channel:
    title: str
    description: str
    link: str  # the podcast's page (its JSON URL)
    self_url: str  # where the feed is served (atom:link rel="self")
    language: str
    author: str
    image_url: str
    category: str
    explicit: bool
    podcast_type: str
    owner_name: str
    owner_email: str
    guid: uuid.UUID
    last_build: datetime  # when the feed's content last changed


@dataclass(frozen=True, slots=True)
class Item:
    guid: str  # the episode id
    title: str
    description: str
    enclosure_url: str
    length: int  # bytes (DESIGN.md "Deviations")
    published: datetime
    duration_seconds: int | None
    episode_number: int | None
    season: int | None
    episode_type: str
    explicit: bool


def render_feed(channel: Channel, items: list[Item]) -> bytes:
    """The feed document, UTF-8 with an XML declaration."""
    rss = ET.Element("rss", {"version": "2.0"})
    _channel(ET.SubElement(rss, "channel"), channel, items)
    ET.indent(rss)
    document: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _channel(parent: ET.Element, channel: Channel, items: list[Item]) -> None:
    _text(parent, "title", channel.title)
    _text(parent, "link", channel.link)
    _text(parent, "description", html_text(channel.description))
    _text(parent, "language", channel.language)
    _text(parent, "generator", "mediaserver")
    _text(parent, "lastBuildDate", rfc2822(channel.last_build))
    ET.SubElement(
        parent,
        _tag(ATOM, "link"),
        {"href": channel.self_url, "rel": "self", "type": "application/rss+xml"},
    )
    image = ET.SubElement(parent, "image")
    _text(image, "url", channel.image_url)
    _text(image, "title", channel.title)
    _text(image, "link", channel.link)
    _text(parent, _tag(ITUNES, "author"), channel.author)
    ET.SubElement(parent, _tag(ITUNES, "image"), {"href": channel.image_url})
    ET.SubElement(parent, _tag(ITUNES, "category"), {"text": channel.category})
    _text(parent, _tag(ITUNES, "explicit"), _bool(channel.explicit))
    _text(parent, _tag(ITUNES, "type"), channel.podcast_type)
    owner = ET.SubElement(parent, _tag(ITUNES, "owner"))
    _text(owner, _tag(ITUNES, "name"), channel.owner_name)
    _text(owner, _tag(ITUNES, "email"), channel.owner_email)
    _text(parent, _tag(PODCAST, "guid"), str(channel.guid))
    # "no": other platforms may import the feed, so the DJ can always move hosts.
    locked = ET.SubElement(parent, _tag(PODCAST, "locked"), {"owner": channel.owner_email})
    locked.text = "no"
    for item in items:
        _item(ET.SubElement(parent, "item"), item)


def _item(parent: ET.Element, item: Item) -> None:
    _text(parent, "title", item.title)
    _text(parent, "description", html_text(item.description))
    _text(parent, _tag(CONTENT, "encoded"), html_paragraphs(item.description))
    ET.SubElement(
        parent,
        "enclosure",
        {"url": item.enclosure_url, "length": str(item.length), "type": MEDIA_TYPE},
    )
    ET.SubElement(parent, "guid", {"isPermaLink": "false"}).text = item.guid
    _text(parent, "pubDate", rfc2822(item.published))
    if item.duration_seconds is not None:
        _text(parent, _tag(ITUNES, "duration"), hms(item.duration_seconds))
    if item.episode_number is not None:
        _text(parent, _tag(ITUNES, "episode"), str(item.episode_number))
    if item.season is not None:
        _text(parent, _tag(ITUNES, "season"), str(item.season))
    _text(parent, _tag(ITUNES, "episodeType"), item.episode_type)
    _text(parent, _tag(ITUNES, "explicit"), _bool(item.explicit))


def relocate(body: bytes, self_url: str, enclosure_url: Callable[[str, str], str]) -> bytes:
    """A feed `render_feed` wrote, served from elsewhere: `atom:link rel="self"` set to
    `self_url`, and each item's enclosure URL to `enclosure_url(guid, url)`. Done on the
    parsed document, so the result is as well-formed as the input."""
    rss = ET.fromstring(body)  # noqa: S314 - our own output (`render_feed`), not user input
    channel = rss.find("channel")
    if channel is None:
        raise ValueError("not a feed: no channel")
    for link in channel.iterfind(_tag(ATOM, "link")):
        if link.get("rel") == "self":
            link.set("href", self_url)
    for item in channel.iterfind("item"):
        enclosure, guid = item.find("enclosure"), item.findtext("guid")
        if enclosure is not None and guid:
            enclosure.set("url", enclosure_url(guid, enclosure.get("url", "")))
    document: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def rfc2822(moment: datetime) -> str:
    """`Tue, 10 Jun 2025 14:00:00 GMT` (RSS 2.0 dates are RFC 822/2822)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def hms(seconds: int) -> str:
    """`itunes:duration` as HH:MM:SS (hours keep counting past 99)."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def html_text(text: str) -> str:
    """Plain text as HTML that displays exactly that text."""
    return html.escape(text, quote=False)


def html_paragraphs(text: str) -> str:
    """Plain text as HTML paragraphs: blank lines separate paragraphs, newlines break lines."""
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "".join(f"<p>{html_text(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _bool(value: bool) -> str:
    return "true" if value else "false"
