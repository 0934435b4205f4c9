"""Conditional request evaluation (RFC 9110 §13) of the feed and media routes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from control.podcasts.responses import not_modified, range_applies

ETAG = '"abc"'
MODIFIED = datetime(2025, 6, 10, 14, 0, 0, 500_000, tzinfo=UTC)
DATE = "Tue, 10 Jun 2025 14:00:00 GMT"


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, False),
        ({"If_None_Match": ETAG}, True),
        ({"If_None_Match": f'"x", W/{ETAG}'}, True),
        ({"If_None_Match": "*"}, True),
        ({"If_None_Match": '"x"', "If_Modified_Since": DATE}, False),
        ({"If_Modified_Since": DATE}, True),
        ({"If_Modified_Since": "Tue, 10 Jun 2025 13:59:59 GMT"}, False),
        ({"If_Modified_Since": "yesterday"}, False),
    ],
)
def test_not_modified(given, expected):
    assert not_modified(headers(**given), ETAG, MODIFIED) is expected


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [(None, True), (ETAG, True), ('"other"', False), (f"W/{ETAG}", False), (DATE, True),
     ("Mon, 09 Jun 2025 14:00:00 GMT", False), ("junk", False)],
)  # fmt: skip
def test_range_applies(if_range, expected):
    given = headers(If_Range=if_range) if if_range is not None else headers()
    assert range_applies(given, ETAG, MODIFIED) is expected
