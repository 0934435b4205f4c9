"""What the pages show (issue 12, "Pages a person opens"): the directory of stations on air
and one station's page, gathered from the services that own each part (streams, now
playing, DJ profiles, plans). The pages are for anyone: every read is made as a visitor
with no token, so a page never shows what the API would not show that visitor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from control.monetization.schemas import PlanListQuery, PlanOut
from control.monetization.service import MonetizationService
from control.nowplaying.schemas import HistoryQuery, SongOut
from control.nowplaying.service import NowPlayingService
from control.profiles.schemas import DjPage
from control.profiles.service import ProfilesService
from control.streams.schemas import StreamDetail, StreamListQuery, StreamOut
from control.streams.service import StreamsService
from mediaserver.errors import Forbidden, NotConfigured, NotFound, Unauthenticated

#: The directory page lists at most this many stations (the API pages further).
DIRECTORY_SIZE = 100
#: Songs shown on a station page.
HISTORY_SIZE = 10
NO_STATION = "No such station"


@dataclass(frozen=True, slots=True)
class Directory:
    """The stations on air that match the filters, and every genre on air (the filter's
    choices)."""

    stations: list[StreamOut]
    genres: list[str]
    genre: str | None
    q: str | None


@dataclass(frozen=True, slots=True)
class Station:
    """One station as its page shows it. `plans` is None when listening is free; else
    the plans that open it (empty when none are on sale)."""

    stream: StreamDetail
    dj: DjPage | None
    songs: list[SongOut]
    plans: list[PlanOut] | None
    plans_url: str

    @property
    def paywalled(self) -> bool:
        return self.plans is not None


class PagesService:
    """Reads for the pages; each part from the service that owns it."""

    def __init__(
        self,
        streams: StreamsService,
        nowplaying: NowPlayingService,
        profiles: ProfilesService,
        monetization: MonetizationService,
        base_url: str,
    ) -> None:
        self._streams = streams
        self._nowplaying = nowplaying
        self._profiles = profiles
        self._monetization = monetization
        self._base_url = base_url

    async def directory(self, genre: str | None, q: str | None) -> Directory:
        """Public stations on air, filtered as `GET /v1/streams?on_air=true` filters."""
        query = StreamListQuery(on_air=True, genre=genre, q=q, per_page=DIRECTORY_SIZE)
        listed = await self._streams.directory(None, query)
        on_air = (await self._nowplaying.now_playing()).stations
        genres = sorted({s.genre for s in on_air if s.genre}, key=str.casefold)
        return Directory(listed.streams, genres, genre, q)

    async def station(self, stream_id: uuid.UUID) -> Station:
        """The station page's content; 404 for a stream a visitor may not see (private,
        disabled, deleted or unknown: one answer for all)."""
        try:
            stream = await self._streams.detail(None, stream_id)
            history = HistoryQuery(per_page=HISTORY_SIZE)
            songs = (await self._nowplaying.history(None, stream_id, history)).songs
        except (Unauthenticated, Forbidden, NotFound):
            raise NotFound(NO_STATION) from None
        return Station(
            stream=stream,
            dj=await self._dj(stream.owner_id),
            songs=songs,
            plans=await self._plans(stream) if stream.play_urls is None else None,
            plans_url=f"{self._base_url}/v1/monetization/plans?owner_id={stream.owner_id}",
        )

    async def _dj(self, owner_id: uuid.UUID) -> DjPage | None:
        try:
            return await self._profiles.page(owner_id)
        except NotFound:  # a DJ with no public profile yet
            return None

    async def _plans(self, stream: StreamDetail) -> list[PlanOut]:
        """The plans that open the owner's streams (none when no provider sells them)."""
        try:
            page = await self._monetization.list_plans(PlanListQuery(owner_id=stream.owner_id))
        except NotConfigured:
            return []
        return page.plans


PAGES = web.AppKey("pages_service", PagesService)
