"""The catalog's query building, without a database: the tsquery text of a search (prefix,
corrections only where pg_trgm found some), and the WHERE clause a filter set makes."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from control.catalog.queries import LISTED, TrackQuery, order_by
from control.catalog.schemas import TrackListQuery, TrackSearchQuery, words_of
from control.catalog.service import track_query, tsquery_text
from control.security import Principal
from mediaserver.errors import Unauthenticated


def test_the_last_word_is_a_prefix_and_every_word_must_match():
    assert tsquery_text(["deep", "ho"], {}) == "deep & ho:*"
    assert tsquery_text(["cafe"], {}) == "cafe:*"


def test_corrections_widen_only_the_words_that_have_some():
    # What the service passes once pg_trgm found neighbours; without pg_trgm it passes {}.
    text = tsquery_text(["techo", "bunker"], {0: ["techno", "tech"]})
    assert text == "(techo | techno | tech) & bunker:*"
    assert tsquery_text(["techo", "bunker"], {}) == "techo & bunker:*"
    assert tsquery_text(["wharehouse"], {0: ["warehouse"]}) == "(wharehouse:* | warehouse)"


def test_words_carry_no_tsquery_syntax():
    assert words_of("deep & ho:* | !x (y)") == ["deep", "ho", "x", "y"]
    assert words_of("Café   del-Mar") == ["Café", "del", "Mar"]
    assert len(words_of(" ".join(["w"] * 30))) == 8


def test_no_filter_lists_the_public_catalog_only():
    query = track_query(TrackListQuery(), None)
    assert query.where == LISTED and query.args == []


def test_each_filter_adds_one_numbered_parameter():
    filters = TrackListQuery(genre="House", tags="deep,Vinyl", bpm_min=120, key="Am")
    query = track_query(filters, None)
    assert query.args == ["House", ["deep", "Vinyl"], 120, "Am"]
    assert "t.genre_key = (SELECT catalog_fold($1))" in query.where
    assert "t.tag_keys @> (SELECT catalog_tags($2::text[]))" in query.where
    assert "t.bpm >= $3" in query.where and "t.musical_key = $4" in query.where
    assert query.param(20) == "$5"


def test_mine_needs_a_caller_and_adds_its_own_tracks():
    with pytest.raises(Unauthenticated):
        track_query(TrackListQuery(mine=True), None)
    me = Principal(uuid.uuid4(), "dj@example.com", "dj", frozenset(), "jti")
    query = track_query(TrackListQuery(mine=True, genre="x"), me)
    assert query.args[0] == me.user_id
    assert "t.owner_id = $1" in query.where and "(SELECT catalog_fold($2))" in query.where
    assert "t.visibility = 'public'" in TrackQuery().where


def test_sorts_and_orders_are_chosen_from_constants():
    assert order_by("popularity", "desc") == "t.plays DESC, t.track_id DESC"
    assert order_by("title", "asc") == "t.title_key ASC, t.track_id ASC"
    with pytest.raises(ValidationError):
        TrackListQuery(sort="plays; DROP TABLE tracks")  # type: ignore[arg-type]


@pytest.mark.parametrize("q", ["", "   ", "!!!", "x" * 201])
def test_a_search_needs_a_word(q):
    with pytest.raises(ValidationError) as raised:
        TrackSearchQuery(q=q)
    assert raised.value.errors()[0]["loc"] == ("q",)
