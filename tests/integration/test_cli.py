"""The CLI contract: `serve`, `migrate`, `create-admin`, `python -m mediaserver`, bad settings."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import asyncpg
import pytest

from mediaserver.demo import DEMO_ID_FILE
from tests.accounts import PASSWORD, unique_email

MEDIASERVER = [sys.executable, "-m", "mediaserver"]


def run(args, env, timeout=120):
    return subprocess.run(
        [*MEDIASERVER, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit status once it exits; its stderr pipe is closed either way."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        assert process.stderr is not None
        process.stderr.close()


def wait_healthy(url: str, process: subprocess.Popen, deadline: float) -> dict:
    import json

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (http to our own loopback server)
                return json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy in time")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HLS_SEGMENT_SECONDS": "99"}, "mediaserver: invalid setting HLS_SEGMENT_SECONDS"),
        ({"DATABASE_URL": "mysql://nope"}, "mediaserver: invalid setting DATABASE_URL"),
        ({"STREAM_KEY_SECRET": "tooshort"}, "mediaserver: invalid setting STREAM_KEY_SECRET"),
    ],
)
def test_bad_settings_fail_at_start_with_one_line(tmp_path, env, message):
    result = run(
        ["serve", "--port", str(free_port())], {"MEDIASERVER_DATA_DIR": str(tmp_path), **env}
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_URL": "postgresql://mediaserver:s3cret@127.0.0.1:{port}/x"},
            "mediaserver: cannot connect to DATABASE_URL at "
            "postgresql://mediaserver:***@127.0.0.1:{port}/x: ",
        ),
        (
            {"REDIS_URL": "redis://127.0.0.1:{port}/0"},
            "mediaserver: cannot connect to REDIS_URL at redis://127.0.0.1:{port}/0: ",
        ),
    ],
)
def test_unreachable_services_fail_at_start_with_one_line(tmp_path, database_url, env, message):
    # A service that refuses connections: one line naming the setting (password hidden).
    port = free_port()
    env = {k: v.format(port=port) for k, v in env.items()}
    env.setdefault("DATABASE_URL", database_url)
    for args in (["serve", "--port", str(free_port())], ["migrate"]):
        if args == ["migrate"] and "REDIS_URL" in env:
            continue  # migrate needs only the database
        result = run(args, {"MEDIASERVER_DATA_DIR": str(tmp_path), **env})
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(message.format(port=port)), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def test_a_taken_port_fails_at_start_with_one_line(tmp_path, database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_URL": database_url, "MEDIASERVER_DATA_DIR": str(tmp_path)}
        result = run(["serve", "--port", str(port)], env)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]  # after the start-up log lines
    assert last.startswith(f"mediaserver: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in last
    assert "mediaserver listening" not in result.stderr


def test_migrate_then_create_admin_then_promote(make_database, tmp_path):
    url = make_database()
    env = {"DATABASE_URL": url, "MEDIASERVER_DATA_DIR": str(tmp_path)}
    first = run(["migrate"], env)
    assert first.returncode == 0 and "0001_foundation.sql" in first.stdout
    assert "nothing" in run(["migrate"], env).stdout

    email = unique_email("boss")
    created = run(["create-admin", "--email", email, "--password", PASSWORD, "--name", "Boss"], env)
    assert created.returncode == 0, created.stderr
    weak = run(["create-admin", "--email", email, "--password", "weak"], env)
    assert weak.returncode == 2 and "password" in weak.stderr

    async def role() -> tuple[str, str]:
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow("SELECT role, name FROM users WHERE email = $1", email)
            return row["role"], row["name"]
        finally:
            await conn.close()

    assert asyncio.run(role()) == ("admin", "Boss")

    # Without --password the password comes from standard input, never the command line.
    piped = subprocess.run(
        [*MEDIASERVER, "create-admin", "--email", email, "--name", "Piped"],
        env={**os.environ, **env},
        input="An0therSecret!\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert asyncio.run(role()) == ("admin", "Piped")


def test_serve_answers_health_and_stops_on_sigterm(make_database, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": make_database(), "MEDIASERVER_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [*MEDIASERVER, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        body = wait_healthy(f"http://127.0.0.1:{port}/v1/health", process, time.monotonic() + 60)
        assert body == {"status": "ok"}
    finally:
        assert stop(process) == 0


def test_serve_on_embedded_postgres(tmp_path):
    """The quick-start path: no DATABASE_URL at all."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MEDIASERVER_DATA_DIR"] = str(tmp_path / "var")
    process = subprocess.Popen(
        [*MEDIASERVER, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_healthy(
            f"http://127.0.0.1:{port}/v1/health", process, time.monotonic() + 120
        ) == {"status": "ok"}
        assert (tmp_path / "var" / "pg" / "PG_VERSION").exists()
        assert (tmp_path / "var" / "keys" / "jwt_private.pem").exists()
    finally:
        assert stop(process) == 0


def test_serve_demo_plays_at_once(make_database, tmp_path):
    """`serve --demo`: a newcomer gets a playable stream with titles and the URLs printed;
    a restart on the same data dir plays it again under the same link, and so does one
    whose data dir lost the id file (found by the demo DJ and the stream's name)."""
    env = {**os.environ, "DATABASE_URL": make_database(), "MEDIASERVER_DATA_DIR": str(tmp_path)}
    first = _serve_demo(env, play=True)
    assert _serve_demo(env, play=False) == first  # yesterday's link still plays
    (tmp_path / DEMO_ID_FILE).unlink()
    assert _serve_demo(env, play=False) == first
    assert (tmp_path / DEMO_ID_FILE).read_text().strip() in first


def _serve_demo(env: dict[str, str], play: bool) -> str:
    """Run `serve --demo` until its stream has a title (and, with `play`, decodes); the
    printed MP3 URL without its port."""
    import json
    import re

    from tests.audio import decode

    port = free_port()
    process = subprocess.Popen(
        [*MEDIASERVER, "serve", "--demo", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any("live.m3u8" in line for line in lines) and time.monotonic() < deadline:
            lines.append(process.stderr.readline())
        mp3_url = next(
            re.search(r"(http\S+live\.mp3)", line).group(1) for line in lines if "live.mp3" in line
        )
        status_url = mp3_url.replace("live.mp3", "status")
        status = {"current_track": None}
        for _ in range(100):  # the URLs are printed just before the node starts listening
            try:
                with urllib.request.urlopen(status_url, timeout=5) as response:  # noqa: S310
                    status = json.loads(response.read())
            except OSError:
                pass
            if status["current_track"]:
                break
            time.sleep(0.2)
        assert status["current_track"].startswith("Demo Ensemble - ")
        if play:
            assert decode(mp3_url, limit=2.0).duration >= 2.0
        return mp3_url.replace(f":{port}/", ":PORT/")
    finally:
        assert stop(process) == 0
