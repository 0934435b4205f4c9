"""Several `mediaserver serve` processes on loopback sharing one PostgreSQL database, one
Redis database and one data directory (so one set of keys and one object store): a
cluster as an operator runs it, each node with its own port and `NODE_NAME`.

    async with Cluster(database_url, tmp_path) as cluster:
        a, b, c = await cluster.start("node-a", "node-b", "node-c")
        async with a.session() as http: ...
        await cluster.kill(a)       # kill -9
        await cluster.terminate(b)  # SIGTERM, waits for the exit
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aioredis

from mediaserver.config import Settings
from mediaserver.keys import load_secrets
from tests.livenode import eventually
from tests.loopback import free_port

T = TypeVar("T")

#: A Redis database of its own, emptied when a cluster starts: members and leases left by
#: another test's killed nodes must not count.
CLUSTER_REDIS = "redis://127.0.0.1:6379/11"


@dataclass(eq=False)  # compared and hashed by identity: one per process
class Node:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def session(self, **options: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(base_url=self.url, **options)

    @property
    def running(self) -> bool:
        return self.process.returncode is None


class Cluster:
    def __init__(
        self, database_url: str, data_dir: Path, redis_url: str = CLUSTER_REDIS, **env: str
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.env = env
        self.nodes: list[Node] = []

    async def __aenter__(self) -> Cluster:
        redis = aioredis.from_url(self.redis_url)
        await redis.flushdb()
        await redis.aclose()
        # One set of secrets for every node (generated once, read by each).
        load_secrets(Settings(database_url=self.database_url, data_dir=self.data_dir))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for node in self.nodes:
            if node.running:
                node.process.kill()
                await node.process.wait()

    async def start(self, *names: str, **env: str) -> list[Node]:
        """Start one node per name and wait until each is ready."""
        nodes = [await self._spawn(name, env) for name in names]
        await asyncio.gather(*(self.ready(node) for node in nodes))
        return nodes

    async def _spawn(self, name: str, env: dict[str, str]) -> Node:
        port = free_port()
        log = self.data_dir / f"{name}.log"
        environ = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MEDIASERVER_DATA_DIR": str(self.data_dir),
            "NODE_NAME": name,
            "MEDIASERVER_NODE_URL": f"http://127.0.0.1:{port}",
            "PASSWORD_HASH_PROFILE": "fast",
            "RATE_LIMIT_WRITE_PER_MINUTE": "10000",
            "RATE_LIMIT_METADATA_PER_MINUTE": "100000",
            "RATE_LIMIT_STREAMING_PER_MINUTE": "100000",
            "RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE": "10000",
            "RATE_LIMIT_AUTH_PER_IP_PER_MINUTE": "10000",
            "HLS_SEGMENT_SECONDS": "2",
            "RELAY_BATCH_SECONDS": "0.1",
            "LOG_LEVEL": "INFO",
            "PAYMENT_PROVIDER": "stub",
            "DOMAIN_VERIFIER": "stub",
            # The fake sources listen on loopback (stream registration checks the address).
            "ALLOW_PRIVATE_MEDIA_URLS": "true",
            **self.env,
            **env,
        }
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mediaserver",
                "serve",
                "--port",
                str(port),
                env=environ,
                stdout=out,
                stderr=out,
            )
        node = Node(name, port, process, log)
        self.nodes.append(node)
        return node

    async def ready(self, node: Node, timeout: float = 60.0) -> None:
        async def answers() -> bool:
            if not node.running:
                raise AssertionError(f"{node.name} exited:\n{node.log.read_text()[-3000:]}")
            try:
                async with node.session() as http, http.get("/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, timeout)

    async def kill(self, node: Node) -> None:
        """kill -9: no handover, no cleanup."""
        node.process.send_signal(signal.SIGKILL)
        await node.process.wait()

    async def terminate(self, node: Node) -> None:
        """SIGTERM (what Kubernetes sends), not waiting for the exit."""
        node.process.send_signal(signal.SIGTERM)

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.running]


async def first_audio(url: str, timeout: float, *, min_bytes: int = 4096) -> float:
    """Seconds until `url` (redirects followed, retried on refusal and errors) streams at
    least `min_bytes` of MP3; fails past `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        got = 0
                        async for chunk in response.content.iter_any():
                            got += len(chunk)
                            if got >= min_bytes:
                                return time.monotonic() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"no audio from {url} within {timeout} s")
