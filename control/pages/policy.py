"""The pages' Content-Security-Policy: exactly what they use. Scripts, styles, the feeds
(`connect-src`) and images come from the node itself; audio too, and, in a cluster, from
the other nodes, since a node that does not relay a stream redirects its `live.mp3` to the
one that does (`Member.public_url`, another origin when each node has its own). Only the
embeddable player may be framed, by any site."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from mediaserver.cluster import CLUSTER, RedisCluster


def policy(media_origins: Iterable[str] = (), *, embed: bool = False) -> str:
    """The CSP of a page; `media_origins` are allowed to serve audio besides the page's own."""
    media = " ".join(["'self'", *sorted(set(media_origins))])
    framing = (
        "form-action 'none'; frame-ancestors *"
        if embed
        else ("form-action 'self'; frame-ancestors 'none'")
    )
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media}; connect-src 'self'; base-uri 'none'; {framing}"
    )


def media_origins(app: web.Application) -> list[str]:
    """The origins of the cluster's nodes (none for a node alone)."""
    node = app.get(CLUSTER)
    if not isinstance(node, RedisCluster):
        return []
    origins = (_origin(member.public_url) for member in node.members)
    return [origin for origin in origins if origin]


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"
