"""The edge's JSON loader and text checks on their own (control/inputs.py)."""

from __future__ import annotations

import pytest

from control.inputs import MAX_DEPTH, check_query, load_json
from mediaserver.errors import InvalidInput


def refusal(raw: bytes) -> str:
    with pytest.raises(InvalidInput) as refused:
        load_json(raw)
    return refused.value.message


def test_depth_limit_is_exact():
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    deeper = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert refusal(deeper) == "Request body is nested more than 32 levels deep."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": {"b": [1, "x\\u0000"]}}',
         "Field 'a.b[1]' must not contain NUL (\\u0000) characters."),
        (b'{"a": "\\udfff"}', "Field 'a' must not contain unpaired surrogates."),
        (b'{"a": {"\\u0000": 1}}',
         "Field 'a' has a field name with NUL (\\u0000) characters, which are not allowed."),
        (b'"\\ud800"', "Request body must not contain unpaired surrogates."),
        (b'{"n": 1e400}', "Field 'n' must be a finite number."),
        (b'{"n": -Infinity}', "Field 'n' must be a finite number."),
        (b'{"n": ' + b"1" * 101 + b"}", "Field 'n' must be a number of at most 100 characters."),
        (b'{"n": 0.' + b"1" * 100 + b"}", "Field 'n' must be a number of at most 100 characters."),
    ],
)  # fmt: skip
def test_refusals_name_the_field(raw, message):
    assert refusal(raw) == message


def test_good_text_and_numbers_pass():
    assert load_json(
        '{"emoji": "\U0001f3b6", "n": 12.5, "big": 99999999999999999999}'.encode()
    ) == {
        "emoji": "\U0001f3b6",
        "n": 12.5,
        "big": 99999999999999999999,
    }


def test_query_names_and_values():
    check_query({"page": "1"})
    with pytest.raises(InvalidInput, match="Query parameter 'q' must not contain NUL"):
        check_query({"q": "a\x00"})
    with pytest.raises(InvalidInput, match="The query string has a field name"):
        check_query({"\x00": "1"})
