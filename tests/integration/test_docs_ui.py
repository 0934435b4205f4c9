"""`/docs` renders the OpenAPI 3.1 document in a real browser (Debian's Chromium): Swagger UI
from the installed package shows every operation of the document, with no console error
(a Content-Security-Policy violation is one) and no request leaving the node."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.browser import chromium

pytestmark = pytest.mark.timeout(120)


async def test_docs_page_shows_every_operation(client):
    document = await (await client.get("/openapi.json")).json()
    expected = {
        f"operations-{op['tags'][0]}-{op['operationId']}"
        for methods in document["paths"].values()
        for op in methods.values()
    }
    url = str(client.make_url("/docs"))
    node = urlsplit(url).netloc
    started = time.perf_counter()
    async with chromium() as browser:
        page = await browser.new_page()
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: requests.append(r.url))
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        response = await page.goto(url)
        assert response is not None and response.status == 200
        await page.wait_for_function(
            f"document.querySelectorAll('.opblock').length >= {len(expected)}", timeout=30_000
        )
        shown = set(await page.eval_on_selector_all(".opblock", "els => els.map(e => e.id)"))
        # An operation opened shows its request example and its errors' real messages.
        await page.click("#operations-auth-auth_register .opblock-summary")
        await page.wait_for_selector("#operations-auth-auth_register .responses-table")
        opened = await page.inner_text("#operations-auth-auth_register")
        text = await page.inner_text("body")
        version = await page.evaluate("Object.values(window.versions || {})[0]?.version")
        await page.close()
    elapsed = time.perf_counter() - started
    print(f"\n/docs: Swagger UI {version}, {len(shown)} operations shown in {elapsed:.1f} s")
    assert "Unable to render this definition" not in text
    assert "An account with this email already exists" in opened
    assert "Sup3rSecret" in opened  # the request body's example
    assert str(version).startswith("5.")
    assert shown == expected
    # Every operation is there by its operationId (`displayOperationId`) too.
    for op_id in (i.split("-", 2)[2] for i in expected):
        assert op_id in text, op_id
    assert failed == []
    assert errors == []
    assert requests and all(urlsplit(r).netloc == node for r in requests), requests
