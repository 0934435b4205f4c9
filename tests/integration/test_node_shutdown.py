"""`mediaserver serve --demo` as a subprocess, like an operator runs it: SIGTERM while MP3
listeners are connected, and a restart after a crash."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

MEDIASERVER = [sys.executable, "-m", "mediaserver"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """A node with the demo stream; its `live.mp3` URL once printed."""
    process = subprocess.Popen(
        [*MEDIASERVER, "serve", "--demo", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            raise AssertionError("the node exited before printing the demo URLs")
        found = re.search(r"(http\S+/live\.mp3)", line)
        if found:
            return process, found.group(1)
    kill(process)
    raise AssertionError("no demo URLs printed in time")


def kill(process: subprocess.Popen[str]) -> None:
    """Kill the node (if still running), reap it and close its stderr pipe."""
    process.kill()
    process.wait(timeout=15)
    assert process.stderr is not None
    process.stderr.close()


def open_listener(port: int, path: str) -> tuple[socket.socket, bytes]:
    """An HTTP/1.1 MP3 listener on a raw socket, retried until the node listens; the
    socket and the response head."""
    deadline = time.monotonic() + 30
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed before the response head"
        head += chunk
    return sock, head


def wait_until_playing(mp3_url: str) -> None:
    status_url = mp3_url.replace("live.mp3", "status")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:  # noqa: S310 (our loopback node)
                if json.loads(response.read())["relay_connected"]:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the demo stream never connected")


def test_sigterm_ends_mp3_listeners_cleanly_and_exits_at_once(make_database, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": make_database(), "MEDIASERVER_DATA_DIR": str(tmp_path)}
    process, mp3_url = start_demo(env, port)
    try:
        wait_until_playing(mp3_url)
        sock, head = open_listener(port, mp3_url.split(str(port), 1)[1])
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < 32 * 1024:
            body += sock.recv(65536)

        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        while chunk := sock.recv(65536):  # until the server closes the connection
            body += chunk
        ended_after = time.monotonic() - signalled
        sock.close()
        assert process.wait(timeout=15) == 0
        exited_after = time.monotonic() - signalled
    finally:
        kill(process)
    print(f"\nSIGTERM: listener's body ended after {ended_after:.2f} s, exit {exited_after:.2f} s")
    # The body ended with the last chunk (RFC 9112 §7.1), not a reset, and long before
    # aiohttp's 30 s shutdown timeout.
    assert body.endswith(b"\r\n0\r\n\r\n")
    assert ended_after < 3.0, ended_after
    assert exited_after < 10.0, exited_after


def test_a_restart_after_a_crash_plays_the_demo_stream_under_the_same_link(make_database, tmp_path):
    env = {**os.environ, "DATABASE_URL": make_database(), "MEDIASERVER_DATA_DIR": str(tmp_path)}
    first, first_url = start_demo(env, free_port())
    kill(first)  # a crash: no cleanup, the demo stream stays registered, pointing at nothing

    port = free_port()
    second, mp3_url = start_demo(env, port)
    try:
        wait_until_playing(mp3_url)
        # The same stream, pointed at this run's demo source: yesterday's link plays.
        assert mp3_url.split("/v1/", 1)[1] == first_url.split("/v1/", 1)[1]
        listing = f"http://127.0.0.1:{port}/v1/streams"
        with urllib.request.urlopen(listing, timeout=5) as response:
            directory = json.loads(response.read())
        names = [stream["name"] for stream in directory["streams"]]
        assert names.count("mediaserver demo") == 1, directory
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            assert second.wait(timeout=30) == 0
        finally:
            kill(second)
