"""npm packages the tests run (hls.js, newman), pinned by a folder's package-lock.json and
installed there with `npm ci` the first time. CI must have npm (`missing`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.browser import missing


def _installed(folder: Path, name: str) -> str | None:
    try:
        package = folder / "node_modules" / name / "package.json"
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def pinned_package(folder: Path, name: str, purpose: str) -> Path:
    """`folder/node_modules/<name>` at the version `folder/package.json` pins."""
    pinned = json.loads((folder / "package.json").read_text())["dependencies"][name]
    if _installed(folder, name) != pinned:
        npm = shutil.which("npm")
        if npm is None:
            missing(f"npm is not installed: it installs {name} for {purpose}")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            check=True,
            timeout=300,
        )
    assert _installed(folder, name) == pinned
    return folder / "node_modules" / name
