"""Conditional and range requests (RFC 9110 §13, §14): the RFC's own examples, the
precedence of §13.2.2, the 304 and 416 responses, and any header at all never crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from control.conditional import (
    UNSATISFIABLE,
    ByteRange,
    NotModified,
    evaluate,
    http_date,
    if_range_holds,
    matching_etag,
    parse_http_date,
    parse_range,
    respond,
)

SIZE = 1000
ETAG = '"abc"'
MODIFIED = datetime(2025, 6, 10, 14, 0, 0, 500_000, tzinfo=UTC)
DATE = "Tue, 10 Jun 2025 14:00:00 GMT"


# §14.1.2 Byte Ranges ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # §14.1.2's examples, on its 10000-byte representation
        ("bytes=0-499", ByteRange(0, 499, 10_000)),  # the first 500 bytes
        ("bytes=500-999", ByteRange(500, 999, 10_000)),  # the second 500 bytes
        ("bytes=-500", ByteRange(9500, 9999, 10_000)),  # the final 500 bytes
        ("bytes=9500-", ByteRange(9500, 9999, 10_000)),  # the final 500 bytes
    ],
)
def test_the_rfc_byte_range_examples(header, expected):
    assert parse_range(header, 10_000) == expected


@pytest.mark.parametrize(
    "header",
    # §14.1.2: "first and last bytes only", and two spellings of the second 500 bytes:
    # several ranges, answered with the whole representation (§14.2 allows it).
    ["bytes=0-0,-1", "bytes=500-600,601-999", "bytes=500-700,601-999"],
)
def test_several_ranges_mean_the_whole_representation(header):
    assert parse_range(header, 10_000) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0, SIZE)),
        ("bytes=500-5000", ByteRange(500, 999, SIZE)),  # clamped to the end
        ("bytes=100-", ByteRange(100, 999, SIZE)),
        ("bytes=-5000", ByteRange(0, 999, SIZE)),  # a suffix longer than the file
        (" Bytes = 1-2 ", ByteRange(1, 2, SIZE)),
        ("bytes=999-", ByteRange(999, 999, SIZE)),
        ("bytes=0-" + "9" * 5000, ByteRange(0, 999, SIZE)),  # beyond int()'s 4300 digits
        ("bytes=-" + "9" * 5000, ByteRange(0, 999, SIZE)),
        ("bytes=" + "0" * 30 + "7-8", ByteRange(7, 8, SIZE)),
    ],
)
def test_satisfiable_single_ranges(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=" + "9" * 5000 + "-"]
)
def test_unsatisfiable(header):
    assert parse_range(header, SIZE) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=5-2", "bytes=a-b", "items=0-1", "bytes 0-1",
     "bytes=١-٢", "bytes=0x1-2", "bytes=1 - 2"],
)  # fmt: skip
def test_ignored_headers_mean_the_whole_representation(header):
    assert parse_range(header, SIZE) is None


def test_any_range_of_an_empty_representation_is_unsatisfiable():
    assert parse_range("bytes=0-", 0) == UNSATISFIABLE
    assert parse_range("bytes=-10", 0) == UNSATISFIABLE


def test_content_range_as_in_the_rfc():
    assert ByteRange(42, 1233, 1234).content_range == "bytes 42-1233/1234"  # §14.4
    assert ByteRange(21010, 47021, 47022).content_range == "bytes 21010-47021/47022"  # §15.3.7
    assert ByteRange(500, 999, SIZE).length == 500


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
def test_any_range_header_gives_a_valid_decision(header, size):
    decision = parse_range(header, size)
    if isinstance(decision, ByteRange):
        assert 0 <= decision.start <= decision.end < size
    else:
        assert decision in (None, UNSATISFIABLE)


# §8.8.3.2 comparison, §13.1.2 If-None-Match, §13.1.5 If-Range ---------------------------


@pytest.mark.parametrize(
    "field",
    # §13.1.2's examples
    ['"xyzzy"', 'W/"xyzzy"', '"xyzzy", "r2d2xxxx", "c3piozzzz"',
     'W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"', "*"],
)  # fmt: skip
def test_if_none_match_examples(field):
    assert matching_etag(field, ['"xyzzy"']) == '"xyzzy"'
    assert matching_etag(field, ['"other"']) == ('"other"' if field == "*" else None)


@pytest.mark.parametrize(
    ("ours", "theirs", "strong", "weak"),
    [  # §8.8.3.2's table
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ],
)
def test_entity_tag_comparison(ours, theirs, strong, weak):
    assert (matching_etag(theirs, [ours]) == ours) is weak
    assert if_range_holds(theirs, ours, MODIFIED) is strong


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('"a,b", "c"', '"a,b"'),  # a comma inside an opaque tag is part of it
        ('"a', None),
        ('"x", , "a,b",', '"a,b"'),  # empty list elements (§5.6.1)
        ('"x" junk "a,b"', None),  # malformed: names nothing
        ('"x", *', None),  # `*` only alone
        ("", None),
    ],
)
def test_if_none_match_lists(field, expected):
    assert matching_etag(field, ['"a,b"']) == expected


def test_if_none_match_names_the_first_matching_representation():
    gz, plain = '"abc-gz"', '"abc"'
    assert matching_etag(f"{plain}, {gz}", [gz, plain]) == gz
    assert matching_etag(plain, [gz, plain]) == plain
    assert matching_etag("*", [gz, plain]) == gz


@pytest.mark.parametrize(
    ("if_range", "last_modified", "expected"),
    [
        (ETAG, None, True),
        ('"other"', MODIFIED, False),
        (f"W/{ETAG}", MODIFIED, False),  # a weak tag never matches strongly
        (DATE, MODIFIED, True),  # exactly our Last-Modified (to the second)
        ("Tuesday, 10-Jun-25 14:00:00 GMT", MODIFIED, True),  # RFC 850 format
        ("Tue Jun 10 14:00:00 2025", MODIFIED, True),  # asctime format
        ("Tue, 10 Jun 2025 14:00:01 GMT", MODIFIED, False),  # exact match, not "since"
        ("Mon, 09 Jun 2025 14:00:00 GMT", MODIFIED, False),
        (DATE, None, False),  # no Last-Modified: no date can match
        ("junk", MODIFIED, False),
    ],
)
def test_if_range(if_range, last_modified, expected):
    assert if_range_holds(if_range, ETAG, last_modified) is expected


def test_if_range_example_of_the_rfc():
    modified = datetime(1994, 10, 29, 19, 43, 31, tzinfo=UTC)
    assert if_range_holds("Sat, 29 Oct 1994 19:43:31 GMT", '"xyzzy"', modified)  # §13.1.5
    assert if_range_holds('"xyzzy"', '"xyzzy"', None)


def test_http_dates():
    moment = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert http_date(moment) == "Sun, 06 Nov 1994 08:49:37 GMT"  # §5.6.7
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                 "Sun Nov  6 08:49:37 1994"):  # fmt: skip
        assert parse_http_date(text) == moment
    assert parse_http_date("yesterday") is None and parse_http_date(None) is None


# §13.2.2 Precedence -----------------------------------------------------------------------


def decide(method="GET", last_modified=MODIFIED, size=SIZE, **fields):
    headers = CIMultiDict({k.replace("_", "-"): v for k, v in fields.items()})
    return evaluate(
        headers,
        method,
        [ETAG],
        size,
        last_modified,
        if_none_match=headers.get("If-None-Match"),
        range_header=headers.get("Range"),
    )


@pytest.mark.parametrize(
    ("fields", "not_modified"),
    [
        ({}, False),
        ({"If_None_Match": ETAG}, True),
        ({"If_None_Match": f'"x", W/{ETAG}'}, True),
        ({"If_None_Match": "*"}, True),
        ({"If_None_Match": '"x"', "If_Modified_Since": DATE}, False),  # the ETag decides
        ({"If_Modified_Since": DATE}, True),
        ({"If_Modified_Since": "Wed, 11 Jun 2025 00:00:00 GMT"}, True),
        ({"If_Modified_Since": "Tue, 10 Jun 2025 13:59:59 GMT"}, False),
        ({"If_Modified_Since": "yesterday"}, False),
    ],
)
def test_not_modified(fields, not_modified):
    expected = NotModified(ETAG) if not_modified else None
    assert decide(**fields) == expected
    assert decide("HEAD", **fields) == expected


def test_if_modified_since_needs_a_last_modified():
    assert decide(last_modified=None, If_Modified_Since=DATE) is None


def test_a_304_wins_over_any_range():
    assert decide(If_None_Match=ETAG, Range="bytes=0-1") == NotModified(ETAG)
    assert decide(If_None_Match=ETAG, Range="bytes=5000-") == NotModified(ETAG)


@pytest.mark.parametrize(
    ("if_range", "served"),
    [(None, True), (ETAG, True), ('"other"', False), (f"W/{ETAG}", False), (DATE, True),
     ("Mon, 09 Jun 2025 14:00:00 GMT", False), ("junk", False)],
)  # fmt: skip
def test_if_range_decides_whether_the_range_is_served(if_range, served):
    fields = {"Range": "bytes=0-9"} | ({"If_Range": if_range} if if_range else {})
    assert decide(**fields) == (ByteRange(0, 9, SIZE) if served else None)
    past = {**fields, "Range": "bytes=5000-"}
    assert decide(**past) == (UNSATISFIABLE if served else None)  # 200, not 416


def test_if_range_by_date_needs_a_last_modified():
    assert decide(last_modified=None, Range="bytes=0-9", If_Range=DATE) is None
    assert decide(last_modified=None, Range="bytes=0-9", If_Range=ETAG) == ByteRange(0, 9, SIZE)


def test_ranges_are_for_get_only():
    assert decide("HEAD", Range="bytes=0-9") is None  # §14.2
    assert decide("HEAD", Range="bytes=5000-") is None


def test_if_range_without_range_is_ignored():
    assert decide(If_Range='"other"') is None


@given(
    st.sampled_from(["GET", "HEAD"]),
    st.dictionaries(
        st.sampled_from(["If-None-Match", "If-Modified-Since", "If-Range", "Range"]),
        st.text(max_size=30),
    ),
)
def test_any_fields_give_an_outcome(method, fields):
    outcome = decide(method, **{k.replace("-", "_"): v for k, v in fields.items()})
    # Whatever the text (If-None-Match: * included), one of the outcomes, and a range (or
    # its refusal) only for GET (§14.2).
    assert (
        outcome is None or outcome == UNSATISFIABLE or isinstance(outcome, NotModified | ByteRange)
    )
    if outcome == UNSATISFIABLE or isinstance(outcome, ByteRange):
        assert method == "GET"


# The responses ----------------------------------------------------------------------------

HEADERS = {
    "Content-Type": "video/mp2t",
    "Content-Encoding": "gzip",
    "Cache-Control": "public, max-age=60",
    "Vary": "Accept-Encoding",
    "Accept-Ranges": "bytes",
    "ETag": '"abc-gz"',
}


def ask(method="GET", **fields):
    request = make_mocked_request(method, "/media", headers=CIMultiDict(fields))
    headers = dict(HEADERS)
    outcome = respond(
        request,
        headers,
        ['"abc-gz"', ETAG],
        SIZE,
        if_none_match=request.headers.get("If-None-Match"),
        range_header=request.headers.get("Range"),
    )
    return outcome, headers


def test_a_304_carries_the_validator_the_client_has_and_no_body():
    response, _ = ask(**{"If-None-Match": ETAG})
    assert response.status == 304 and response.body is None
    assert dict(response.headers) == {
        "Cache-Control": "public, max-age=60",
        "Vary": "Accept-Encoding",
        "Accept-Ranges": "bytes",
        "ETag": ETAG,  # not the gzip variant's: the cache holds the identity one
    }


def test_a_416_has_the_size_and_our_error_body():
    response, _ = ask(Range="bytes=5000-")
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Content-Encoding" not in response.headers
    assert json.loads(response.body) == {
        "error": f"Range not satisfiable: the media is {SIZE} bytes long",
        "code": 416,
    }


def test_a_range_adds_content_range_and_a_whole_representation_nothing():
    assert ask(Range="bytes=-10") == (
        ByteRange(990, 999, SIZE),
        {**HEADERS, "Content-Range": "bytes 990-999/1000"},
    )
    assert ask() == (None, HEADERS)
    assert ask("HEAD", Range="bytes=-10") == (None, HEADERS)
