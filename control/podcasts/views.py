"""How podcasts and episodes are shown: their absolute URLs and response models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from control.podcasts.queries import EpisodeRow, PodcastRow
from control.podcasts.schemas import EpisodeOut, PodcastOut, PodcastSummary

#: Backlog US-11.2.
NO_EPISODES = "No episodes yet. Add your first episode via POST /v1/podcasts/{podcast_id}/episodes."


@dataclass(frozen=True, slots=True)
class Links:
    """Absolute URLs, from `MEDIASERVER_PUBLIC_URL` (or the node's address)."""

    base_url: str

    def podcast(self, podcast_id: uuid.UUID) -> str:
        return f"{self.base_url}/v1/podcasts/{podcast_id}"

    def feed(self, podcast_id: uuid.UUID) -> str:
        return f"{self.podcast(podcast_id)}/rss.xml"

    def media(self, podcast_id: uuid.UUID, episode_id: uuid.UUID) -> str:
        return f"{self.podcast(podcast_id)}/episodes/{episode_id}/media.mp3"

    def enclosure(self, row: EpisodeRow, podcast_paywalled: bool) -> str:
        """Free external episodes enclose their own URL. Uploads, and external episodes
        behind the paywall, enclose this server's media route: it checks the paywall (a
        token or a feed grant) before it serves the audio or redirects to the external URL,
        so a paywalled episode's address is never handed to someone who may not play it."""
        if row.external_url is not None and not (podcast_paywalled or row.monetization_required):
            return row.external_url
        return self.media(row.podcast_id, row.episode_id)

    @staticmethod
    def custom_feed(row: PodcastRow) -> str | None:
        """The feed at the podcast's own domain (attached domains are verified and have a
        certificate)."""
        return custom_feed_url(row.custom_domain)

    def canonical_feed(self, podcast_id: uuid.UUID, custom_domain: str | None) -> str:
        """Where the feed lives: at the podcast's own domain when it has one."""
        return custom_feed_url(custom_domain) or self.feed(podcast_id)


def custom_feed_url(custom_domain: str | None) -> str | None:
    return f"https://{custom_domain}/rss.xml" if custom_domain else None


def custom_media_url(custom_domain: str, episode_id: str) -> str:
    """An episode's media at the podcast's own domain (`https`, like its feed)."""
    return f"https://{custom_domain}/episodes/{episode_id}/media.mp3"


def podcast_summary(row: PodcastRow, links: Links) -> PodcastSummary:
    return PodcastSummary(
        podcast_id=row.podcast_id,
        owner_id=row.owner_id,
        title=row.title,
        description=row.description,
        language=row.language,
        author=row.author,
        image_url=row.image_url,
        explicit=row.explicit,
        category=row.category,
        podcast_type=row.podcast_type,
        owner_name=row.owner_name,
        owner_email=row.owner_email,
        custom_domain=row.custom_domain,
        custom_feed_url=links.custom_feed(row),
        monetization_enabled=row.monetization_enabled,
        rss_feed_url=links.feed(row.podcast_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def podcast_out(
    row: PodcastRow, episodes: list[EpisodeRow], links: Links, now: datetime, privileged: bool
) -> PodcastOut:
    """`privileged` (the owner, an admin) also see paywalled episodes' external URLs."""
    paywalled = row.monetization_enabled
    return PodcastOut(
        **dict(podcast_summary(row, links)),
        episodes=[episode_out(e, links, now, paywalled, privileged) for e in episodes],
        message=None if episodes else NO_EPISODES.format(podcast_id=row.podcast_id),
    )


def episode_out(
    row: EpisodeRow, links: Links, now: datetime, podcast_paywalled: bool, privileged: bool
) -> EpisodeOut:
    media_url = row.external_url if privileged else None
    return EpisodeOut(
        episode_id=row.episode_id,
        source_type=row.source_type,
        upload_id=row.upload_id,
        media_url=media_url or links.enclosure(row, podcast_paywalled),
        media_size_bytes=row.media_size_bytes,
        title=row.title,
        description=row.description,
        duration_seconds=row.duration_seconds,
        publication_date=row.publication_date,
        published=row.publication_date <= now,
        episode_number=row.episode_number,
        season=row.season,
        episode_type=row.episode_type,
        explicit=row.explicit,
        monetization_required=row.monetization_required,
    )
