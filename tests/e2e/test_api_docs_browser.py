"""The Swagger UI in a real headless Chromium: a link cannot make it load someone else's spec.

`/api-docs?url=…&configUrl=…` must still show sneakerd's own document, the page must fetch
nothing but its own origin, and its Content-Security-Policy must not break Swagger UI (Chromium
reports every blocked script, style or fetch as a console error, which fails the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Request, expect

from sneakerd.web.app import OPENAPI_JSON
from tests.e2e.browser import Console, chromium, screenshots_dir
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(60)

EVIL = "http://127.0.0.1:1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(f"sqlite:///{tmp_path / 'sneakerd.db'}", {}, tmp_path).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    "query",
    [f"?url={EVIL}/evil.json", f"?configUrl={EVIL}/evil-config.json"],
    ids=["url", "configUrl"],
)
def test_api_docs_ignores_a_spec_named_in_its_address(server: Server, query: str) -> None:
    console = Console()
    requested: list[str] = []
    with chromium() as browser:
        context = browser.new_context()
        page = console.watch(context.new_page(), "api-docs")

        def on_request(request: Request) -> None:
            requested.append(request.url)

        page.on("request", on_request)
        page.goto(f"{server.url}/api-docs{query}")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("sneakerd", timeout=15_000)
        expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
        paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
        assert any("/api/drops" in p for p in paths), paths
        shown = page.evaluate("() => window.ui.specSelectors.url()")
        page.screenshot(path=str(screenshots_dir() / "api-docs.png"), full_page=False)
        context.close()
    assert shown == OPENAPI_JSON, shown
    assert server.url + OPENAPI_JSON in requested, requested
    elsewhere = [url for url in requested if not url.startswith(server.url + "/")]
    assert elsewhere == [], elsewhere
    assert console.errors == [], console.errors
