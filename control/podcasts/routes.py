"""`/v1/podcasts*` control routes: series and episodes (the feed and the media are in
`control.podcasts.media_routes`)."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.podcasts.delivery import DELIVERY
from control.podcasts.episodes import EPISODES
from control.podcasts.schemas import (
    EpisodeCreated,
    EpisodeIn,
    EpisodeUpdate,
    EpisodeUpdated,
    PodcastCreated,
    PodcastIn,
    PodcastList,
    PodcastOut,
    PodcastUpdate,
    PodcastUpdated,
    PrivateFeedUrl,
)
from control.podcasts.service import PODCASTS
from control.schemas import PageQuery
from control.security import principal_key, principal_of

api = Api()
PODCAST = "/v1/podcasts/{podcast_id}"
EPISODE = PODCAST + "/episodes/{episode_id}"
_OWNER_REFUSED = (
    "Your token lacks the 'podcasts:write' scope",
    "Only the podcast's owner or an admin can do this",
)
_DOMAIN_TAKEN = (
    "Custom domain podcasts.example.com is already in use",
    "Custom domain podcasts.example.com is already in use by another podcast",
)
_DOMAIN_REFUSED = (
    "Custom domain podcasts.example.com is not registered: register it with POST /v1/domains "
    "and wait for it to be verified",
    "Custom domain podcasts.example.com is not verified yet",
)
_MEDIA_REFUSED = (
    "Field 'upload_id' does not name one of your uploads (3fa85f64-5717-4562-b3fc-2c963f66afa6)",
    "The media URL answered HEAD with HTTP 404; it must answer 200",
    "The media URL serves text/html; episodes must be audio/mpeg (MP3)",
    "The media URL could not be reached (connection failed or timed out)",
)
_EPISODE_EXAMPLE = {
    "title": "Episode 1: Live from Ibiza",
    "description": "Exclusive set and interview.",
    "source_type": "upload",
    "upload_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "episode_number": 1,
    "season": 1,
}
_NUMBER_TAKEN = "Episode number 1 already exists in this podcast"


@api.post(
    "/v1/podcasts",
    summary="Create a podcast series",
    description="`custom_domain` must be one of the caller's verified domains "
    "(`POST /v1/domains`; 422 otherwise) not used by another podcast (409).",
    tag="podcasts",
    body=PodcastIn,
    response=PodcastCreated,
    status=201,
    scope="podcasts:write",
    errors=(400, 401, 403, 409, 422, 429),
    examples={409: _DOMAIN_TAKEN, 422: _DOMAIN_REFUSED},
    body_example={
        "title": "Tech DJ Podcast",
        "description": "Weekly interviews with top DJs.",
        "language": "en-us",
        "author": "DJ Example",
        "image_url": "https://cdn.example.com/images/podcast-cover.jpg",
        "category": "Music",
    },
)
async def create_podcast(request: web.Request, body: PodcastIn) -> PodcastCreated:
    return await request.app[PODCASTS].create(principal_of(request), body)


@api.get(
    "/v1/podcasts",
    summary="The caller's podcasts, newest first",
    tag="podcasts",
    query=PageQuery,
    response=PodcastList,
    scope="podcasts:read",
    errors=(400, 401, 403, 429),
)
async def list_podcasts(request: web.Request, query: PageQuery) -> PodcastList:
    return await request.app[PODCASTS].list_mine(principal_of(request), query)


@api.get(
    PODCAST,
    summary="A podcast and its episodes, newest first",
    description="Public, unless the podcast is monetized: then 403 `Subscription required` "
    "without an active subscription, signed in or not (owners and admins always pass). "
    "`message` says so when there are no episodes yet. Episodes scheduled for later are "
    "listed to the owner and admins only.",
    tag="podcasts",
    response=PodcastOut,
    auth="optional",
    errors=(401, 403, 404, 429),
    examples={403: "Subscription required"},
)
async def get_podcast(request: web.Request) -> PodcastOut:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await request.app[PODCASTS].detail(request.get(principal_key), podcast_id)


@api.get(
    PODCAST + "/feed-url",
    summary="The caller's private feed URL, for podcast apps",
    description="Podcast apps (Apple Podcasts, Overcast…) cannot send a token: subscribe "
    "them to this URL instead. It carries a grant bound to the caller, so the feed and its "
    "enclosures open without headers while the caller may read the feed — for a paywalled "
    "feed, while the subscription is active (403 once it is cancelled or expired), and "
    "until the account's password is changed or the account deleted (sign out "
    "everywhere): then ask for a new one. Same access rule as the feed: 403 without an "
    "active subscription.",
    tag="podcasts",
    response=PrivateFeedUrl,
    scope="podcasts:read",
    errors=(401, 403, 404, 429),
    examples={403: ("Your token lacks the 'podcasts:read' scope", "Subscription required")},
)
async def private_feed_url(request: web.Request) -> PrivateFeedUrl:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await request.app[DELIVERY].private_feed_url(principal_of(request), podcast_id)


@api.patch(
    PODCAST,
    summary="Change a podcast (owner or admin)",
    description='Any non-empty subset of the creation fields; `"custom_domain": null` '
    "detaches the domain.",
    tag="podcasts",
    body=PodcastUpdate,
    response=PodcastUpdated,
    scope="podcasts:write",
    errors=(400, 401, 403, 404, 409, 422, 429),
    examples={403: _OWNER_REFUSED, 409: _DOMAIN_TAKEN, 422: _DOMAIN_REFUSED},
    body_example={"custom_domain": "podcasts.example.com"},
)
async def update_podcast(request: web.Request, body: PodcastUpdate) -> PodcastUpdated:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await request.app[PODCASTS].update(principal_of(request), podcast_id, body)


@api.delete(
    PODCAST,
    summary="Delete a podcast (owner or admin)",
    description="Soft delete: its page, feed and media answer 404; its domain is freed.",
    tag="podcasts",
    status=204,
    scope="podcasts:write",
    errors=(401, 403, 404, 429),
    examples={403: _OWNER_REFUSED},
)
async def delete_podcast(request: web.Request) -> None:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    await request.app[PODCASTS].delete(principal_of(request), podcast_id)


@api.post(
    PODCAST + "/episodes",
    summary="Add an episode (owner or admin)",
    description="`upload`: one of the podcast owner's uploads, `ready` (422 otherwise). "
    "`external`: `media_url` must answer HEAD with 200 and `audio/mpeg` from a public "
    "address and tell its size (422 otherwise); without `duration_seconds` its duration "
    "is estimated from its first 64 KiB. 409 when the `episode_number` is taken. The feed "
    "shows the episode at once, or at its `publication_date` when that is later.",
    tag="podcasts",
    body=EpisodeIn,
    response=EpisodeCreated,
    status=201,
    scope="podcasts:write",
    errors=(400, 401, 403, 404, 409, 422, 429),
    examples={403: _OWNER_REFUSED, 409: _NUMBER_TAKEN, 422: _MEDIA_REFUSED},
    body_example=_EPISODE_EXAMPLE,
)
async def add_episode(request: web.Request, body: EpisodeIn) -> EpisodeCreated:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await request.app[EPISODES].add(principal_of(request), podcast_id, body)


@api.patch(
    EPISODE,
    summary="Change an episode (owner or admin)",
    description="Any non-empty subset of the creation fields; new media is checked as on "
    "creation. The feed reflects the change at once.",
    tag="podcasts",
    body=EpisodeUpdate,
    response=EpisodeUpdated,
    scope="podcasts:write",
    errors=(400, 401, 403, 404, 409, 422, 429),
    examples={403: _OWNER_REFUSED, 409: _NUMBER_TAKEN, 422: _MEDIA_REFUSED},
    body_example={"title": "Episode 1: Live from Ibiza (extended)"},
)
async def update_episode(request: web.Request, body: EpisodeUpdate) -> EpisodeUpdated:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    episode_id = path_uuid(request, "episode_id", "Episode")
    return await request.app[EPISODES].update(principal_of(request), podcast_id, episode_id, body)


@api.delete(
    EPISODE,
    summary="Delete an episode (owner or admin)",
    description="Soft delete; the episode leaves the feed at once.",
    tag="podcasts",
    status=204,
    scope="podcasts:write",
    errors=(401, 403, 404, 429),
    examples={403: _OWNER_REFUSED},
)
async def delete_episode(request: web.Request) -> None:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    episode_id = path_uuid(request, "episode_id", "Episode")
    await request.app[EPISODES].delete(principal_of(request), podcast_id, episode_id)
