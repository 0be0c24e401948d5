"""The Swagger UI in a real headless Chromium: a link cannot make it load someone else's spec.

`/api-docs?url=…&configUrl=…` must still show sneakerd's own document, the page must fetch
nothing but its own origin, and its Content-Security-Policy must not break Swagger UI (Chromium
reports every blocked script, style or fetch as a console error, which fails the test).
Authorize takes a token as register gives it and "Try it out" then sends it as a bearer token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Request, expect

from sneakerd.web.app import OPENAPI_JSON
from tests.e2e.browser import Console, call, chromium, screenshots_dir
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


def test_authorize_with_a_pasted_token_calls_an_authenticated_route(server: Server) -> None:
    """The OpenAPI 3 document's http/bearer scheme: the token is pasted as register gave it
    (no `Bearer ` to type), and "Try it out" on GET /api/users/profile answers 200."""
    name = f"docs_{uuid.uuid4().hex[:8]}"
    status, body = call(
        server,
        "POST",
        "/api/users/register",
        {"username": name, "email": f"{name}@example.com", "password": "hunter2hunter2"},
    )
    assert status == 201, body
    token = body["token"]
    console = Console()
    sent: list[str | None] = []
    with chromium() as browser:
        context = browser.new_context()
        page = console.watch(context.new_page(), "api-docs-authorize")

        def on_request(request: Request) -> None:
            if request.url == server.url + "/api/users/profile":
                sent.append(request.headers.get("authorization"))

        page.on("request", on_request)
        page.goto(f"{server.url}/api-docs")
        page.locator(".swagger-ui .auth-wrapper .btn.authorize").click(timeout=15_000)
        page.locator('input[aria-label="auth-bearer-value"]').fill(token)
        page.locator(".modal-ux .btn.modal-btn.auth.authorize").click()
        page.locator(".modal-ux .btn-done").click()
        operation = page.locator("#operations-users-profile")
        operation.locator(".opblock-summary").first.click()
        operation.locator(".try-out__btn").click()
        operation.locator(".btn.execute").click()
        status_cell = operation.locator(".live-responses-table tbody .response-col_status").first
        expect(status_cell).to_have_text("200", timeout=15_000)
        expect(operation.locator(".live-responses-table")).to_contain_text(name)
        page.screenshot(path=str(screenshots_dir() / "api-docs-authorized.png"), full_page=False)
        context.close()
    assert sent == [f"Bearer {token}"], sent
    assert console.errors == [], console.errors
