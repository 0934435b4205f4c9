"""`.github/workflows/ci.yml` runs the gates `.ci/run` runs: ruff check, ruff format
--check and mypy (`make lint`), the whole suite under the coverage gate (`make coverage`),
with PostgreSQL and Redis as service containers, the Debian tools the tests need, and the
image build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def commands(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def lint_commands() -> list[str]:
    """What `make lint` runs, as the Makefile says."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    return [line.strip().replace("$(BIN)", ".venv/bin") for line in recipe.splitlines()[1:]]


def test_the_workflow_runs_on_pushes_and_pull_requests() -> None:
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow()[True]
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]


def test_lint_and_types_are_the_make_lint_gates() -> None:
    run = commands(workflow()["jobs"]["lint"])
    assert lint_commands() == [
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/mypy",
    ]
    for command in lint_commands():
        assert command in run
    assert "make lint" in (ROOT / ".ci" / "run").read_text()


def test_the_suite_runs_with_the_coverage_gate_of_ci_run() -> None:
    job = workflow()["jobs"]["tests"]
    assert re.search(
        r"^make coverage$", (ROOT / ".ci" / "run").read_text().replace("exec ", ""), re.M
    )
    assert "make coverage" in commands(job)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^COVERAGE_MIN \?= 85$", makefile, re.M)
    for package in ("control", "hls", "relay", "mediaserver"):
        assert f"--cov={package}" in makefile
    assert "--cov-fail-under=$(COVERAGE_MIN)" in makefile


def test_postgres_and_redis_are_service_containers_on_loopback() -> None:
    job = workflow()["jobs"]["tests"]
    services = job["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in services["postgres"]["ports"]
    assert services["redis"]["image"].startswith("redis:")
    assert "6379:6379" in services["redis"]["ports"]
    assert job["env"]["CI"] == "true"
    assert "127.0.0.1:5432" in job["env"]["TEST_DATABASE_URL"]


def test_the_debian_tools_of_ci_run_are_installed() -> None:
    run = commands(workflow()["jobs"]["tests"])
    ci_run = (ROOT / ".ci" / "run").read_text()
    for tool in ("icecast2", "ffmpeg", "nginx-light", "podman", "runc", "debootstrap", "npm"):
        assert tool in ci_run and tool in run, tool
    assert "/usr/bin/chromium" in ci_run and "/usr/bin/chromium" in run


def test_the_image_is_built_from_the_dockerfile() -> None:
    assert (ROOT / "Dockerfile").is_file()
    assert "docker build" in commands(workflow()["jobs"]["image"])


def test_python_is_the_version_the_project_targets() -> None:
    for name in ("lint", "tests"):
        setup = next(
            step
            for step in workflow()["jobs"][name]["steps"]
            if str(step.get("uses", "")).startswith("actions/setup-python")
        )
        assert setup["with"]["python-version"] == "3.11"
