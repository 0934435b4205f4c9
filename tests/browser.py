"""Debian's Chromium, driven by Playwright's Python package (which never downloads a browser
of its own here): `async with chromium() as browser`. CI must run the tests that use it: a
missing tool fails them under `CI=true` and skips them elsewhere (`missing`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    # No connection leaves loopback: no update checks, syncing or component downloads.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing(reason: str) -> NoReturn:
    """CI must run the test: a missing tool fails it there and skips it elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Any]:
    if not Path(CHROMIUM).is_file():
        missing(f"Debian's chromium is not installed ({CHROMIUM})")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("the playwright package is not installed (the `test` extra)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            await browser.close()
