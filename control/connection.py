"""What the node asks of aiohttp's HTTP server for each connection, through its public
options (`web.Application(handler_args=…)`, which `web.run_app` and the test server both
honour): timeouts, body decoding, and how aiohttp's own parser errors are logged.

- **Slow clients.** aiohttp arms its keep-alive timer when a connection opens and closes
  the connection when it fires while no complete request head has arrived, so
  `keepalive_timeout` is also the time a client has to send its request line and headers:
  a slowloris client trickling a header byte a second is dropped after
  `HEADER_READ_TIMEOUT_SECONDS` (the default 3 630 s would hold it for an hour). Bodies
  have their own deadline where they are read (`control.inputs.read_body`,
  `control/uploads/form.py`), and what is left unread after an early answer is drained
  for `LINGERING_SECONDS` at most.
- **Content codings.** aiohttp decodes gzip/deflate/br itself and refuses what it cannot
  with a plain-text 400 before any route runs; with `auto_decompress` off the route table
  decides (`control.inputs`): one JSON error naming the header, gzip and deflate decoded
  within the body limit (no decompression bomb), anything else refused.
- **Parser errors.** A request aiohttp cannot parse (a header over 8 190 bytes, more than
  128 headers, a malformed request line) never reaches a route: aiohttp answers it with a
  plain-text 400 of its own and logs it with the exception, whose text quotes the first
  100 bytes of the offending line, an `Authorization: Bearer …` value included. The
  server's logger is ours (`PARSER_LOG`), and its filter (`ParserErrorFilter`) rewrites
  such records to name the error class and the client only, at WARNING, without the
  traceback. The body and the `Server` header of that 400 are aiohttp's: no public option
  changes them (the request has no route, so neither middlewares nor signals run).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http import HttpProcessingError

from mediaserver.config import Settings

LINGERING_SECONDS = 1.0
#: aiohttp's per-connection server log (requests it could not parse or serve).
PARSER_LOG = logging.getLogger("mediaserver.http.server")


class ParserErrorFilter(logging.Filter):
    """Rewrites aiohttp's "Error handling request" records about requests it could not
    parse: no traceback and no exception text (it quotes what the client sent)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "unparseable request from %s refused with %s: %s"
            record.args = (remote, exc.code, type(exc).__name__)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


PARSER_LOG.addFilter(ParserErrorFilter())


def handler_args(settings: Settings) -> dict[str, Any]:
    """The options of aiohttp's request handler for this node (module doc)."""
    return {
        "keepalive_timeout": settings.header_read_timeout_seconds,
        "auto_decompress": False,
        # After an answer sent before the body was read (413, 408, 401…), aiohttp reads
        # and drops the rest for this long so the client sees the answer (10 s by default:
        # a trickling client would hold the connection that much longer).
        "lingering_time": LINGERING_SECONDS,
        "logger": PARSER_LOG,
    }
