"""The reference server of the fan-out benchmark: a real Icecast 2 (Debian's `icecast2`)
on loopback, configured like our node (512 KiB queue, 64 KiB burst), fed by a source client
that sends the same MP3 frames as the fake source, at the same pace."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.bench.harness import free_port, raise_nofile, stop_process, wait_for_port
from tests.livefeed import Mp3Clip

MOUNT = "/live"

_CONFIG = """<icecast>
  <location>loopback</location>
  <admin>bench@localhost</admin>
  <limits>
    <clients>{clients}</clients>
    <sources>2</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65536</burst-size>
  </limits>
  <authentication>
    <source-password>{password}</source-password>
    <admin-user>admin</admin-user>
    <admin-password>{password}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket>
    <port>{port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>{logdir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>2</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>{changeowner}
  </security>
</icecast>
"""
# Icecast refuses to run as root; started as root it binds, then becomes `nobody`.
_CHANGEOWNER = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"


def icecast_binary() -> str | None:
    return shutil.which("icecast2") or shutil.which("icecast")


@dataclass(frozen=True)
class Icecast:
    process: subprocess.Popen[bytes]
    port: int
    password: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def listeners(self) -> int | None:
        """The mount's listener count from `/admin/stats`."""
        credentials = base64.b64encode(f"admin:{self.password}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        url = f"http://127.0.0.1:{self.port}/admin/stats"
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as response,
            ):
                text = await response.text()
            found = re.search(rf'<source mount="{MOUNT}">.*?<listeners>(\d+)<', text, re.S)
            return int(found.group(1)) if found else None
        return None


@contextlib.asynccontextmanager
async def run_icecast(binary: str, clients: int) -> AsyncIterator[Icecast]:
    with tempfile.TemporaryDirectory(prefix="icecast-bench-") as tmp:
        port, password = free_port(), secrets.token_hex(8)
        logdir = Path(tmp) / "log"
        logdir.mkdir()
        root = os.geteuid() == 0
        if root:  # `nobody` must reach and write its log directory
            Path(tmp).chmod(0o711)
            shutil.chown(logdir, "nobody", "nogroup")
        config = Path(tmp) / "icecast.xml"
        config.write_text(
            _CONFIG.format(
                clients=clients + 100,
                password=password,
                port=port,
                logdir=logdir,
                changeowner=_CHANGEOWNER if root else "",
            )
        )
        log = Path(tmp) / "icecast.out"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,
            )
        try:
            await wait_for_port(port, process, log)
            yield Icecast(process, port, password, logdir / "error.log")
        finally:
            await stop_process(process, timeout=10)


class IcecastFeeder:
    """A source client (HTTP PUT, as Icecast 2.4 accepts): `clip` looped in real time, the
    same chunks at the same pace as `tests.sources.FakeSource` sends them."""

    def __init__(self, clip: Mp3Clip, port: int, password: str) -> None:
        self._clip = clip
        self._port = port
        self._password = password
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def __aenter__(self) -> IcecastFeeder:
        self._task = asyncio.create_task(self._run(), name="icecast-feeder")
        done, _ = await asyncio.wait(
            [self._task, asyncio.create_task(self.connected.wait())],
            timeout=10,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._task in done:
            self._task.result()  # raises what went wrong
        if not self.connected.is_set():
            raise RuntimeError("Icecast did not accept the source within 10 s")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        credentials = base64.b64encode(f"source:{self._password}".encode()).decode()
        writer.write(
            (
                f"PUT {MOUNT} HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
                f"Authorization: Basic {credentials}\r\nContent-Type: audio/mpeg\r\n"
                "Ice-Public: 0\r\nIce-Name: Bench Radio\r\nIce-Bitrate: 128\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if head.split(b" ", 2)[1:2] not in ([b"100"], [b"200"]):
            raise RuntimeError(f"Icecast refused the source: {head[:200]!r}")
        clip, loop = self._clip, asyncio.get_running_loop()
        started, sent, index = loop.time(), 0.0, 0
        self.connected.set()
        try:
            while True:
                delay = started + sent - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(clip.chunk(index))
                await writer.drain()
                index += clip.frames_per_chunk
                sent += clip.frames_per_chunk * clip.frame_duration
        finally:
            writer.close()
