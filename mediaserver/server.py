"""Runs the node's HTTP server until SIGINT/SIGTERM, as `aiohttp.web.run_app` does, with
the connections answering hot responses themselves (`mediaserver.hotpath`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import web

from mediaserver.hotpath import HOT, HotAppRunner


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    listening: Callable[[], None],
    shutdown_timeout: float = 30.0,
) -> None:
    """Serve `app` on `host:port`; `listening()` once the socket is bound. On a signal the
    app shuts down in order (its own shutdown and cleanup hooks) before any other task is
    cancelled; a start-up failure is raised."""
    loop = asyncio.new_event_loop()
    main = loop.create_task(_serve(app, host, port, listening, shutdown_timeout))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_the_rest(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    listening: Callable[[], None],
    shutdown_timeout: float,
) -> None:
    runner = HotAppRunner(
        app,
        app.get(HOT),
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        handle_signals=True,  # SIGINT/SIGTERM raise GracefulExit
        keepalive_timeout=75.0,  # as `run_app` (the protocol's own default is an hour)
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        listening()
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


def _cancel_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
