"""Benchmarks are `bench_*.py`, so only a run pointed at this folder collects them
(`make bench` = `pytest tests/bench -s -q`); `make test` never sees them."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)  # named on the command line: collected
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
