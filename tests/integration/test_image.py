"""The container image (`Dockerfile`): built with podman on a debootstrapped Debian base
(tests/image.py), then run on the host's network the way an operator runs it, against this
machine's PostgreSQL (a throwaway database), Redis and an S3-protocol server, and once alone
on its embedded PostgreSQL. Needs podman, runc and debootstrap (Debian packages, installed
by `.ci/run`) and root: skipped without them, failed under CI.

Building took 82 s here from cold (debootstrap ~45 s, then the build with its `pip install`),
5 s warm (no change), ~10 s after a change to the code and ~45 s after one to
pyproject.toml (the dependencies' layer); the tests themselves take ~8 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis

from tests.image import Podman, base_image, build_image, container, missing_tools
from tests.loopback import free_port
from tests.s3 import BUCKET, KEYS

#: The image's user (Dockerfile: `useradd --uid 10001`).
UID = "10001"
#: tests/cluster.py has database 11.
REDIS_DB = 12


@pytest.fixture(scope="module")
def podman() -> Podman:
    problem = None
    if missing := missing_tools():
        problem = (
            f"the image tests need {', '.join(missing)} (Debian packages; .ci/run installs them)"
        )
    elif os.getuid() != 0:
        problem = "the image tests run podman as root"
    if problem and os.environ.get("CI"):
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    return Podman()


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    return build_image(podman, base_image(podman))


def wait_healthy(
    podman: Podman, name: str, port: int, path: str = "/v1/health", deadline_s: float = 90
) -> Any:
    """The body of the node's first 200 from `path`; fails with its logs if it exits."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                assert response.headers["Content-Type"].startswith("application/json")
                return json.loads(response.read())
        except OSError:  # refused while starting, or 503 (urllib.error.HTTPError)
            if podman.run("inspect", "--format", "{{.State.Running}}", name) != "true":
                logs = podman.run("logs", name, check=False)
                raise AssertionError(f"the container exited:\n{logs}") from None
            time.sleep(0.2)
    raise AssertionError(f"no 200 from {path} in {deadline_s} s")


def cluster_redis(redis_url: str) -> str:
    """A Redis database of the image tests' own, emptied: no other test's cluster members."""
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{REDIS_DB}"))
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def node_env(port: int, **settings: str) -> dict[str, str]:
    """What an operator sets, except that the node listens on loopback only."""
    return {
        "MEDIASERVER_HOST": "127.0.0.1",
        "MEDIASERVER_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def assert_runs_as_the_image_user(podman: Podman, name: str) -> None:
    assert podman.run("exec", name, "id", "-u") == UID
    users = podman.run("top", name, "user").splitlines()[1:]
    assert users and {user.strip() for user in users} == {"mediaserver"}


def stop(podman: Podman, name: str) -> int:
    """SIGTERM (`podman stop`), then the node's exit status."""
    podman.run("stop", "--time", "30", name, timeout=60)
    return int(podman.run("inspect", "--format", "{{.State.ExitCode}}", name))


def test_image_declares_its_user_entrypoint_and_health_check(podman: Podman, image: str) -> None:
    info = podman.inspect(image)
    assert info["Config"]["User"] == "mediaserver:mediaserver"
    assert info["Config"]["Entrypoint"] == ["mediaserver"]
    assert info["Config"]["Cmd"] == ["serve"]
    assert "8080/tcp" in info["Config"]["ExposedPorts"]
    # `podman build --format docker` kept the HEALTHCHECK (an OCI image would drop it)
    assert "/readyz" in " ".join(info["Healthcheck"]["Test"])


def test_node_in_the_image_is_healthy_with_postgres_redis_and_s3(
    podman: Podman,
    image: str,
    make_database: Callable[[], str],
    redis_url: str,
    s3_endpoint: str,
) -> None:
    port = free_port()
    env = node_env(
        port,
        DATABASE_URL=make_database(),
        REDIS_URL=cluster_redis(redis_url),
        STORAGE_URL=f"s3://{BUCKET}/image-test",
        S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID=KEYS["access_key"],
        AWS_SECRET_ACCESS_KEY=KEYS["secret_key"],
        NODE_NAME="image-test",
    )
    with container(podman, image, env) as name:
        assert wait_healthy(podman, name, port) == {"status": "ok"}
        ready = wait_healthy(podman, name, port, "/readyz")
        # with REDIS_URL the node is a cluster member, alone in its Redis database
        assert (ready["status"], ready["node"], ready["members"]) == (
            "ready",
            "image-test",
            ["image-test"],
        )
        assert_runs_as_the_image_user(podman, name)
        podman.run("healthcheck", "run", name)  # the image's HEALTHCHECK passes
        assert stop(podman, name) == 0  # a clean shutdown on SIGTERM


def test_image_alone_runs_on_its_embedded_postgresql(podman: Podman, image: str) -> None:
    port = free_port()
    with container(podman, image, node_env(port)) as name:
        assert wait_healthy(podman, name, port) == {"status": "ok"}
        assert_runs_as_the_image_user(podman, name)  # PostgreSQL's processes too
        assert stop(podman, name) == 0


def test_health_check_fails_once_the_database_is_gone(
    podman: Podman, image: str, make_database: Callable[[], str], pg_server_url: str
) -> None:
    """The HEALTHCHECK is readiness (`/readyz`): a node that lost its database is unhealthy."""
    port = free_port()
    database = make_database()
    with container(podman, image, node_env(port, DATABASE_URL=database)) as name:
        assert wait_healthy(podman, name, port) == {"status": "ok"}
        assert podman.status("healthcheck", "run", name) == 0
        asyncio.run(drop_database(pg_server_url, database))
        assert podman.status("healthcheck", "run", name) != 0


async def drop_database(server_url: str, database_url: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        name = urlsplit(database_url).path.lstrip("/")
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()
