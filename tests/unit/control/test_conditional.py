"""`Range: bytes=…` decisions (RFC 9110 §14) on a 1000-byte representation, and any header
at all never crashes the parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control.conditional import UNSATISFIABLE, ByteRange, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0, SIZE)),
        ("bytes=0-499", ByteRange(0, 499, SIZE)),
        ("bytes=500-999", ByteRange(500, 999, SIZE)),
        ("bytes=500-5000", ByteRange(500, 999, SIZE)),  # clamped to the end
        ("bytes=100-", ByteRange(100, 999, SIZE)),
        ("bytes=-500", ByteRange(500, 999, SIZE)),
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
    [None, "", "bytes=", "bytes=-", "bytes=5-2", "bytes=a-b", "bytes=0-1,5-6", "items=0-1",
     "bytes 0-1", "bytes=١-٢", "bytes=0x1-2"],
)  # fmt: skip
def test_ignored_headers_mean_the_whole_representation(header):
    assert parse_range(header, SIZE) is None


def test_any_range_of_an_empty_file_is_unsatisfiable():
    assert parse_range("bytes=0-", 0) == UNSATISFIABLE
    assert parse_range("bytes=-10", 0) == UNSATISFIABLE


def test_content_range():
    part = ByteRange(500, 999, SIZE)
    assert (part.content_range, part.length) == ("bytes 500-999/1000", 500)


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
def test_any_header_gives_a_valid_decision(header, size):
    decision = parse_range(header, size)
    if isinstance(decision, ByteRange):
        assert 0 <= decision.start <= decision.end < size
    else:
        assert decision in (None, UNSATISFIABLE)
