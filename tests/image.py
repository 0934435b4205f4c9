"""The node's container image for the tests, built with podman from the repository's
`Dockerfile`.

No container registry is reachable here, so the Dockerfile's `BASE_IMAGE` is a Debian
bookworm root file system made by debootstrap from the machine's own Debian mirror (python3,
python3-venv and ca-certificates: what the Dockerfile needs of `python:3.11-slim-bookworm`).
Its tarball is kept in `CACHE`, named by a hash of how it was made, and imported once into
podman's storage; podman keeps the build's layers, so a second run with the same code builds
nothing and one with changed code rebuilds only the project's wheel (seconds).

Podman runs as root with runc: crun refuses this machine's hybrid cgroup hierarchy, and the
default rlimits podman asks for (1048576 open files and processes) are above the hard limits
here, which a container runtime without CAP_SYS_RESOURCE cannot raise.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Outlives a checkout (CI clones afresh): `_cache_dir` refuses it if another user owns it.
CACHE = Path(os.environ.get("MEDIASERVER_IMAGE_CACHE", "/var/tmp/mediaserver-image"))  # noqa: S108
TAG = "localhost/mediaserver:test"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libmp3lame0")
#: Emptied in the base image: downloaded packages, package lists, documentation, translations.
BASE_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)
#: The machine's CA bundle, lent to the build's `pip install` (never kept in the image): the
#: package index may be reached through a proxy that only the machine's bundle trusts.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("podman", "runc", "debootstrap")
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool, path=SBIN_PATH) is None]


def _ulimits() -> list[str]:
    """Limits the runtime may set: the hard ones of this process, nproc at most 32768 (above
    that runc's setrlimit failed here although the shell's hard limit was 96367)."""
    limits = []
    for name, kind, cap in (
        ("nofile", resource.RLIMIT_NOFILE, 1 << 20),
        ("nproc", resource.RLIMIT_NPROC, 32768),
    ):
        hard = resource.getrlimit(kind)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        limits += ["--ulimit", f"{name}={value}:{value}"]
    return limits


class Podman:
    """`podman` as root with runc, cgroupfs and file events (no systemd here)."""

    def __init__(self) -> None:
        runc = shutil.which("runc", path=SBIN_PATH)
        podman = shutil.which("podman", path=SBIN_PATH)
        assert runc and podman, f"missing: {missing_tools()}"
        self.command = [podman, "--runtime", runc, "--cgroup-manager", "cgroupfs"]
        self.command += ["--events-backend", "file"]
        self.ulimits = _ulimits()

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        result = subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {args[0]} failed ({result.returncode}): {result.stderr}")
        return result.stdout.strip()

    def status(self, *args: str, timeout: float = 60) -> int:
        """The exit status of `podman args…`, its output dropped."""
        command = [*self.command, *args]
        return subprocess.run(command, capture_output=True, check=False, timeout=timeout).returncode

    def exists(self, image: str) -> bool:
        return self.status("image", "exists", image) == 0

    def image_id(self, image: str) -> str | None:
        if not self.exists(image):
            return None
        return self.run("image", "inspect", "--format", "{{.Id}}", image)

    def inspect(self, image: str) -> Any:
        """`podman image inspect`: the image's `Config`, its `Healthcheck`…"""
        return json.loads(self.run("image", "inspect", image))[0]


def debian_mirror() -> str:
    """The machine's own Debian mirror of `SUITE`, from its apt sources (deb822 or one-line)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if ":" in line and not line.startswith(("#", " ", "\t"))
            )
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs", "").strip():
                return fields["URIs"].split()[0]
    one_line = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]
    for path in (path for path in one_line if path.exists()):
        for words in (line.split() for line in path.read_text().splitlines()):
            if words[:1] == ["deb"] and SUITE in words:
                return next(word for word in words[1:] if "://" in word)
    raise AssertionError(f"no Debian {SUITE} mirror in /etc/apt/sources.list*")


def base_image(podman: Podman) -> str:
    """The debootstrapped base, imported once; its tarball is cached under `CACHE`."""
    recipe = f"{SUITE} minbase {','.join(BASE_PACKAGES)} trim {','.join(BASE_TRIM)}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tag = f"localhost/mediaserver-base:{SUITE}-{key}"
    if podman.exists(tag):
        return tag
    tarball = _cache_dir() / f"base-{SUITE}-{key}.tar"
    if not tarball.exists():
        _debootstrap(tarball)
        for stale in tarball.parent.glob(f"base-{SUITE}-*.tar"):  # made by an older recipe
            if stale != tarball:
                stale.unlink()
    changes = ["--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]']
    podman.run("import", *changes, str(tarball), tag, timeout=300)
    return tag


def _cache_dir() -> Path:
    CACHE.mkdir(mode=0o700, parents=True, exist_ok=True)
    if CACHE.stat().st_uid != os.getuid():
        raise AssertionError(f"{CACHE} belongs to another user: not using it")
    return CACHE


def _debootstrap(tarball: Path) -> None:
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        debootstrap = shutil.which("debootstrap", path=SBIN_PATH)
        assert debootstrap is not None
        options = ["--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
        command = [debootstrap, *options, SUITE, str(rootfs), debian_mirror()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise AssertionError(f"debootstrap failed: {result.stdout[-2000:]}{result.stderr}")
        for trim in BASE_TRIM:
            for entry in (rootfs / trim).iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        partial = Path(work) / "base.tar"
        tar = ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."]
        subprocess.run(tar, check=True, timeout=300)
        partial.rename(tarball)


def build_image(podman: Podman, base: str) -> str:
    """`podman build` of the repository as `TAG`; the image it replaces is removed."""
    before = podman.image_id(TAG)
    with tempfile.TemporaryDirectory() as conf:
        mounts = []
        if HOST_CA.exists():
            pip_conf = Path(conf) / "pip.conf"
            pip_conf.write_text(f"[global]\ncert = {HOST_CA}\n")
            mounts = ["-v", f"{HOST_CA}:{HOST_CA}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
        log = _cache_dir() / "build.log"
        # --format docker keeps the HEALTHCHECK; --network host: the host's name resolution
        build = [*podman.command, "build", "--format", "docker", "--network", "host"]
        build += [*podman.ulimits, *mounts, "--build-arg", f"BASE_IMAGE={base}"]
        with log.open("w") as out:
            result = subprocess.run(
                [*build, "--tag", TAG, str(ROOT)],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            )
    if result.returncode != 0:
        raise AssertionError(f"podman build failed, see {log}:\n{log.read_text()[-3000:]}")
    after = podman.image_id(TAG)
    assert after is not None
    if before and before != after:
        podman.run("rmi", before, check=False)  # and its layers no other image uses
    return TAG


@contextmanager
def container(podman: Podman, image: str, env: Mapping[str, str]) -> Iterator[str]:
    """A detached container of `image` on the host's network; removed at the end."""
    name = f"mediaserver-test-{os.urandom(4).hex()}"
    environment = [f"--env={key}={value}" for key, value in env.items()]
    # --health-interval disable: no systemd timer here; `podman healthcheck run` still works
    options = ["--detach", "--name", name, "--network", "host", "--health-interval", "disable"]
    podman.run("run", *options, *podman.ulimits, *environment, image)
    try:
        yield name
    finally:
        podman.run("rm", "--force", "--time", "5", name, check=False)
