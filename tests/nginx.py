"""nginx for tests and benchmarks: Debian's package, found on the PATH or in /usr/sbin and
installed with apt-get when missing (as root), run in the foreground on a private prefix
(its own pid file, error log and temp paths) around an `http {}` body the caller writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from tests.bench.harness import stop_process, wait_for_port

#: The main context; the caller's `http {}` body is included from `http.conf` beside it.
MAIN_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/http.conf;
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


def install_nginx() -> str | None:
    """`nginx-light` (else `nginx`) from Debian when nginx is missing and we are root; the
    binary, or None when it could not be had."""
    if find_nginx() or os.geteuid() != 0 or not shutil.which("apt-get"):
        return find_nginx()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> bool:
        done = subprocess.run(["apt-get", *args], env=env, capture_output=True, check=False)
        return done.returncode == 0

    apt("update", "-q")
    if not apt("install", "-y", "-q", "nginx-light"):
        apt("install", "-y", "-q", "nginx")
    return find_nginx()


@contextlib.asynccontextmanager
async def run_nginx(
    binary: str, prefix: Path, http: str, port: int
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """nginx serving `http` (the body of its `http {}` block, which listens on `port`) with
    `prefix` as its home, until the context ends."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read a 0700 temp dir
    (prefix / "http.conf").write_text(http)
    conf = prefix / "nginx.conf"
    conf.write_text(MAIN_CONF.format(user=user, prefix=prefix))
    log = prefix / "error.log"
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(log), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_for_port(port, process, log)
        yield process
    finally:
        await stop_process(process, timeout=10)
