"""HLS sessions: distinct players within the last one to two spans, bounded memory."""

from __future__ import annotations

from relay.sessions import HlsSessions


def test_a_player_polling_every_target_duration_counts_once() -> None:
    sessions = HlsSessions(span=12.0)
    for second in range(0, 120, 6):  # one player, 20 polls
        sessions.note(("192.0.2.1", "AppleCoreMedia/1.0"), float(second))
    assert sessions.count(120.0) == 1


def test_players_differ_by_address_or_user_agent() -> None:
    sessions = HlsSessions(span=12.0)
    sessions.note(("192.0.2.1", "VLC/3.0"), 0.0)
    sessions.note(("192.0.2.1", "hls.js"), 1.0)
    sessions.note(("192.0.2.2", "VLC/3.0"), 2.0)
    assert sessions.count(3.0) == 3


def test_a_player_that_stopped_polling_is_gone_within_two_spans() -> None:
    sessions = HlsSessions(span=12.0)
    sessions.note("leaver", 0.0)
    sessions.note("stayer", 0.0)
    sessions.note("stayer", 6.0)
    assert sessions.count(11.0) == 2  # still within the first span
    for second in (12.0, 18.0, 24.0):
        sessions.note("stayer", second)
    assert sessions.count(24.0) == 1  # two spans on: only the one still polling


def test_nobody_polling_for_two_spans_counts_nobody() -> None:
    sessions = HlsSessions(span=12.0)
    sessions.note("a", 0.0)
    sessions.note("b", 5.0)
    assert sessions.count(30.0) == 0
    sessions.note("c", 31.0)
    assert sessions.count(31.0) == 1


def test_a_flood_of_new_user_agents_saturates_instead_of_growing() -> None:
    sessions = HlsSessions(span=12.0, limit=1000)
    for n in range(50_000):
        sessions.note(("198.51.100.9", f"bot/{n}"), n / 10_000)
    assert sessions.count(5.0) == 1000
    sessions.clear()
    assert sessions.count(5.0) == 0
