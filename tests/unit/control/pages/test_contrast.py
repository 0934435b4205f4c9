"""The pages' colours keep text readable: every text colour on every background it is
used on has a contrast ratio of at least 4.5:1 (WCAG 2.1 SC 1.4.3, level AA)."""

from __future__ import annotations

import re

import pytest

from control.pages.routes import STATIC

#: (text, background) pairs as pages.css uses them.
PAIRS = [
    ("--ink", "--bg"),
    ("--muted", "--bg"),
    ("--accent", "--bg"),
    ("--ink", "--soft"),  # station cards
    ("--muted", "--soft"),  # genre and listeners on cards, disabled buttons
    ("--accent", "--soft"),  # links on cards
]


def _colours() -> dict[str, str]:
    root = re.search(r":root\s*{([^}]*)}", (STATIC / "pages.css").read_text())
    assert root is not None
    return dict(re.findall(r"(--[a-z]+):\s*(#[0-9a-fA-F]{3,6})", root.group(1)))


def _luminance(colour: str) -> float:
    hex_ = colour.lstrip("#")
    if len(hex_) == 3:
        hex_ = "".join(c * 2 for c in hex_)
    channels = [int(hex_[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_is_readable(text, background):
    colours = _colours()
    assert contrast(colours[text], colours[background]) >= 4.5


def test_button_text_is_readable():
    assert contrast("#fff", _colours()["--accent"]) >= 4.5


def test_the_ratio_is_wcags():
    assert round(contrast("#000", "#fff"), 1) == 21.0
    assert contrast("#777", "#fff") < 4.5
