"""The deployment files at the repository's root, read as files: the `Dockerfile` copies
every package the project ships and `.dockerignore` lets them into the build context;
`compose.yaml` runs several nodes on one PostgreSQL, one Redis and one S3-protocol store,
with only settings the node reads (`mediaserver/config.py`). No container engine is needed
here; `tests/integration/test_image.py` builds and runs the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mediaserver.config import ENVIRONMENT, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
#: The port the image's node listens on (`ENV MEDIASERVER_PORT=` in the Dockerfile).
IMAGE_PORT = int(re.findall(r"\bMEDIASERVER_PORT=(\d+)", DOCKERFILE)[0])


def packages() -> list[str]:
    """Top-level packages pyproject.toml ships (`[tool.setuptools.packages.find] include`)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({name.split(".")[0].rstrip("*") for name in include})


def node_image_services() -> dict[str, Any]:
    """The services that run the node's image (the nodes and `setup`)."""
    image = SERVICES["node-a"]["image"]
    return {name: service for name, service in SERVICES.items() if service["image"] == image}


def nodes() -> dict[str, Any]:
    return {
        name: service
        for name, service in node_image_services().items()
        if "NODE_NAME" in service["environment"]
    }


def test_the_image_gets_every_package_the_project_ships() -> None:
    allowed = set((ROOT / ".dockerignore").read_text().split())
    for package in packages():
        assert f"COPY {package} /src/{package}" in DOCKERFILE
        assert f"!{package}/" in allowed


def test_the_image_runs_the_console_script_as_its_own_user() -> None:
    assert 'ENTRYPOINT ["mediaserver"]' in DOCKERFILE
    assert 'CMD ["serve"]' in DOCKERFILE
    users = re.findall(r"^USER (\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*/readyz", DOCKERFILE, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("service", sorted(node_image_services()))
def test_compose_gives_the_node_only_settings_it_reads(service: str) -> None:
    env = node_image_services()[service]["environment"]
    unknown = set(env) - set(ENVIRONMENT)
    assert not unknown, f"{service}: not settings of mediaserver/config.py: {unknown}"
    settings = load_settings({name: str(value) for name, value in env.items()})
    assert settings.database_url and settings.redis_url  # clustering needs both
    assert (settings.storage_url or "").startswith("s3://")


def test_compose_runs_several_nodes_each_on_its_own_port() -> None:
    ports = set()
    for name, node in nodes().items():
        env = node["environment"]
        assert env["NODE_NAME"] == name
        [mapping] = node["ports"]
        published, container = (int(port) for port in mapping.split(":"))
        assert container == IMAGE_PORT
        # redirects to the node that relays a stream land on that very node
        assert env["MEDIASERVER_NODE_URL"] == f"http://localhost:{published}"
        # the default, http://0.0.0.0:8080 inside the image, would reach no peer
        assert env["MEDIASERVER_INTERNAL_URL"] == f"http://{name}:{IMAGE_PORT}"
        ports.add(published)
    assert len(ports) == len(nodes()) >= 2


def test_compose_nodes_share_the_database_redis_store_and_secrets() -> None:
    shared = ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID")
    shared += ("MEDIASERVER_PUBLIC_URL",)  # the site's: links outlive the node that made them
    envs = [node["environment"] for node in nodes().values()]
    for name in shared:
        assert len({env[name] for env in envs}) == 1, name
    for name in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL"):
        assert urlsplit(envs[0][name]).hostname in SERVICES, name
    for node in nodes().values():
        # the secrets `setup` made: the same JWT key pair, stream-key key and relay token
        assert "keys:/var/lib/mediaserver/keys:ro" in node["volumes"]
        assert node["depends_on"]["setup"] == {"condition": "service_completed_successfully"}


def test_compose_postgres_is_the_database_the_nodes_use() -> None:
    url = urlsplit(nodes()["node-a"]["environment"]["DATABASE_URL"])
    postgres = SERVICES[url.hostname or ""]["environment"]
    assert (url.username, url.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_compose_setup_creates_the_bucket_and_the_shared_secrets() -> None:
    setup = SERVICES["setup"]
    [script] = setup["command"]
    compile(script, "compose.yaml setup", "exec")
    bucket = urlsplit(setup["environment"]["STORAGE_URL"]).hostname
    assert f'create_bucket(Bucket="{bucket}")' in script
    assert "load_secrets(" in script
    assert "keys:/var/lib/mediaserver/keys" in setup["volumes"]
