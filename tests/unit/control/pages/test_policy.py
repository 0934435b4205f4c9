"""The pages' CSP: exactly what they use; audio from the cluster's other nodes too (a
node that does not relay a stream redirects `live.mp3` to the one that does)."""

from __future__ import annotations

from control.pages.policy import _origin, policy


def test_a_page_may_load_only_from_itself_and_never_be_framed():
    assert policy() == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def test_the_embed_may_be_framed_by_any_site_and_posts_nowhere():
    csp = policy(embed=True)
    assert csp.endswith("form-action 'none'; frame-ancestors *")
    assert "script-src 'self';" in csp and "media-src 'self';" in csp


def test_audio_may_come_from_the_other_nodes_of_a_cluster():
    origins = ["https://node-1.radio.example.com", "https://node-0.radio.example.com"]
    csp = policy([*origins, origins[0]])
    assert (
        "media-src 'self' https://node-0.radio.example.com https://node-1.radio.example.com;" in csp
    )
    assert "connect-src 'self';" in csp  # the feeds are served by every node


def test_only_web_origins_are_allowed():
    assert _origin("https://radio.example.com:8443/base/path") == "https://radio.example.com:8443"
    assert _origin("javascript:alert(1)") is None
    assert _origin("http://") is None
