"""docs/postman_collection.json runs end to end against a test node with Postman's own runner
(`newman`, pinned by tests/postman/package-lock.json and installed with `npm ci`): every
request, in the collection's order on an empty account, passes its checks.

The node is a real one on a loopback port; what the collection needs from outside is given
as its variables: a fake SHOUTcast server to register as the stream's source, the node's
relay token, an admin's token, a fresh email and custom domain. The node's settings make
the rest work: no rate limits (the run makes ~70 writes a minute as one user), custom
domains verified at once, 1 s live segments."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from tests.accounts import make_admin, unique_email
from tests.npm import pinned_package
from tests.sources import ShoutcastV1Source, fake_servers_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).parents[2]
RUNNER = ROOT / "tests" / "postman"
NEWMAN = RUNNER / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "docs" / "postman_collection.json"


@pytest.fixture(scope="session")
def newman() -> Path:
    """newman as pinned by tests/postman/package-lock.json (`npm ci` when not yet there)."""
    pinned_package(RUNNER, "newman", "the Postman test")
    assert NEWMAN.is_file()
    return NEWMAN


async def test_collection_passes_against_a_node(
    make_client, fake_servers, newman, test_secrets, tmp_path
):
    client = await make_client(
        hls_segment_seconds=1,
        domain_verify_delay_seconds=0,
        rate_limit_enabled=False,
        track_min_mp3_kbps=32,  # docs/sample.mp3 is a 32 kbps MP3: it becomes a track too
    )
    source = await fake_servers(ShoutcastV1Source, mount="/live")
    admin = await make_admin(client)
    variables = {
        "baseUrl": str(client.make_url("")).rstrip("/"),
        "email": unique_email("postman"),
        "adminToken": admin["access_token"],
        "relayToken": test_secrets.relay_service_token,
        "sourceUrl": source.url,
        "streamKey": source.admin_password,
        "customDomain": f"podcasts-{uuid.uuid4().hex[:8]}.example.com",
    }
    report = tmp_path / "newman.json"
    command = [str(newman), "run", str(COLLECTION), "--working-dir", str(COLLECTION.parent)]
    for key, value in variables.items():
        command += ["--env-var", f"{key}={value}"]
    command += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
    command += ["--timeout-request", "20000", "--color", "off", "--disable-unicode"]
    started = time.perf_counter()
    # The node serves on this event loop: the runner must not block it.
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    assert report.exists(), output.decode(errors="replace")[-6000:]
    run = json.loads(report.read_text())["run"]
    stats = run["stats"]
    print(
        f"\nnewman: {stats['requests']['total']} requests, {stats['assertions']['total']} "
        f"checks in {elapsed:.1f} s"
    )
    failures = [
        f"{f['source'].get('name', '?')}: {f['error'].get('message', f['error'])}"
        for f in run["failures"]
    ]
    assert failures == [], "\n".join(failures)
    assert process.returncode == 0
    names = {e["item"]["name"] for e in run["executions"]}
    collection = json.loads(COLLECTION.read_text())
    assert names == {item["name"] for item in collection["item"]}  # every request ran
    assert stats["assertions"]["failed"] == 0
    # Every variable a request uses was set, by the test or by an earlier request.
    unresolved = [e["item"]["name"] for e in run["executions"] if "{{" in json.dumps(e["request"])]
    assert unresolved == []
