"""Test servers that run an app the way `mediaserver serve` does (`mediaserver.server`):
aiohttp's runner whose connections answer hot responses (`mediaserver.hotpath`)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from mediaserver.hotpath import HOT, HotAppRunner


class HotTestServer(TestServer):
    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return HotAppRunner(self.app, self.app.get(HOT), **kwargs)
