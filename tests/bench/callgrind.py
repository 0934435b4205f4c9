"""Instructions a server process executes, counted by valgrind's callgrind: the same figure
for the same code, inputs and environment whatever else the machine does (wall-clock and CPU
time here swing by ±15 % from one run to the next), so a change's effect on the request path
can be read from one run. The servers start under callgrind with instrumentation off
(`--instr-atstart=no`, several times slower than native, not fifty); `count` turns it on
for one load and reads the dump callgrind writes when asked.

Instructions are not time: cache misses, branch mispredictions and system calls are not in
them, so a ratio of instructions and a ratio of requests per second differ (the origin
benchmark prints both kinds). valgrind is a Debian package (`apt-get install valgrind`)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def wrapper(out_dir: Path) -> list[str]:
    """The command a server runs under; its dumps go to `out_dir`."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.%p.out",
    ]


async def count(pid: int, out_dir: Path, load: Callable[[], Awaitable[T]]) -> tuple[int, T]:
    """Instructions process `pid` executed while `load()` ran, and what `load` returned."""
    await _control("-z", pid)  # what ran since the last dump is not this load's
    await _control("-i", "on", pid)
    try:
        result = await load()
    finally:
        await _control("-i", "off", pid)
    before = set(out_dir.glob(f"callgrind.{pid}.out.*"))
    await _control("-d", pid)
    dumps = sorted(set(out_dir.glob(f"callgrind.{pid}.out.*")) - before, key=_part)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for process {pid} in {out_dir}")
    found = _TOTALS.search(dumps[-1].read_bytes())
    if found is None:
        raise RuntimeError(f"no totals in {dumps[-1]}")
    keep = os.environ.get("BENCH_CALLGRIND_KEEP")  # a folder: dumps for callgrind_annotate
    for dump in dumps:
        if keep:
            shutil.move(dump, Path(keep) / f"{dump.name}.{time.monotonic_ns()}")
        else:
            dump.unlink()
    return int(found.group(1)), result


def _part(path: Path) -> int:
    return int(path.name.rsplit(".", 1)[1])


async def _control(*args: str | int) -> None:
    process = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *map(str, args),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"callgrind_control {args}: {err.decode(errors='replace')}")
