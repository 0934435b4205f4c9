"""The framework floor of the origin benchmark: a bare aiohttp handler returning bytes from
memory, no middleware, no signals, served the way our node is (`web.run_app`, no access
log), in its own process.

    python -m tests.bench.floor PORT MANIFEST

`MANIFEST` is a JSON object `{path: [file, content type]}` or `{path: [file, content type,
{header: value}]}` (response headers to send as well: the "floor with our headers" of the
origin benchmark); each file is read once at start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web


def build(manifest: dict[str, list[Any]]) -> web.Application:
    bodies = {
        path: (Path(entry[0]).read_bytes(), entry[1], entry[2] if len(entry) > 2 else None)
        for path, entry in manifest.items()
    }

    async def handler(request: web.Request) -> web.Response:
        found = bodies.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], content_type=found[1], headers=found[2])

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


def main() -> None:
    port, manifest = int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    web.run_app(build(manifest), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
