"""The Swagger UI at /api-docs: a current Swagger UI 5 that shows our document and nothing else.

The page lives on the shop's origin, next to the shopper's token in localStorage. So it must
carry a strict Content-Security-Policy (scripts and styles from this origin only, fetches to
this origin only, never framed), load no inline script, and take no configuration from its
address: Swagger UI 4.1.0 loaded any document named by `?url=` or `?configUrl=`. The browser
half of this (the page really shows our document under `?url=evil`) is in
tests/e2e/test_api_docs_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from sneakerd.web.apidoc import SWAGGER_UI_VERSION
from sneakerd.web.app import OPENAPI_JSON
from tests.api.conftest import Api

EVIL = "http://127.0.0.1:1/evil.json"


class PageParts(HTMLParser):
    """The page's scripts (src and inline text), stylesheets, inline styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.script_srcs: list[str] = []
        self.inline_scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline_styles: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.handlers += [f"{tag} {k}" for k, _ in attrs if k.startswith("on")]
        if "style" in named:
            self.inline_styles.append(f"{tag} style=")
        if tag == "script":
            self._in_script = True
            if named.get("src"):
                self.script_srcs.append(str(named["src"]))
            else:
                self.inline_scripts.append("<script> without src")
        elif tag == "style":
            self.inline_styles.append("<style>")
        elif tag == "link" and named.get("rel") == "stylesheet":
            self.stylesheets.append(str(named.get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip())


async def get(api: Api, path: str) -> tuple[int, bytes, Any]:
    async with api.http.get(api.server.url + path) as resp:
        return resp.status, await resp.read(), resp.headers


async def page_parts(api: Api, path: str = "/api-docs") -> PageParts:
    status, body, _ = await get(api, path)
    assert status == 200, body
    parts = PageParts()
    parts.feed(body.decode())
    return parts


def local(api: Api, ref: str) -> str:
    """`ref` as a path on this server; fails if it points anywhere else."""
    url = urlsplit(urljoin(api.server.url + "/api-docs", ref))
    assert (url.scheme, url.netloc) == ("http", urlsplit(api.server.url).netloc), ref
    return url.path + (f"?{url.query}" if url.query else "")


def policy(headers: Any) -> dict[str, list[str]]:
    header = headers.get("Content-Security-Policy")
    assert header, dict(headers)
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    return directives


async def initializer(api: Api) -> str:
    parts = await page_parts(api)
    found = [src for src in parts.script_srcs if "initializer" in src]
    assert len(found) == 1, parts.script_srcs
    status, body, headers = await get(api, local(api, found[0]))
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/javascript"), dict(headers)
    return body.decode()


async def test_api_docs_sends_a_strict_content_security_policy(api: Api) -> None:
    status, _, headers = await get(api, "/api-docs")
    assert status == 200
    csp = policy(headers)
    assert csp["default-src"] == ["'none'"], csp
    assert csp["script-src"] == ["'self'"], csp
    assert csp["style-src"] == ["'self'"], csp
    assert csp["connect-src"] == ["'self'"], csp
    assert csp["frame-ancestors"] == ["'none'"], csp
    assert not [v for values in csp.values() for v in values if v.startswith("'unsafe")], csp
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_api_docs_loads_no_inline_script_or_style(api: Api) -> None:
    parts = await page_parts(api)
    assert parts.inline_scripts == [], parts.inline_scripts
    assert parts.handlers == [], parts.handlers
    assert parts.inline_styles == [], parts.inline_styles
    assert len(parts.script_srcs) >= 2 and parts.stylesheets, vars(parts)
    for ref in parts.script_srcs + parts.stylesheets:
        status, body, headers = await get(api, local(api, ref))
        assert status == 200, (ref, body[:200])
        assert "Content-Security-Policy" in headers, ref


async def test_api_docs_serves_swagger_ui_5(api: Api) -> None:
    parts = await page_parts(api)
    bundle = [src for src in parts.script_srcs if "swagger-ui-bundle" in src]
    assert len(bundle) == 1, parts.script_srcs
    _, body, _ = await get(api, local(api, bundle[0]))
    versions = set(re.findall(rb'PACKAGE_VERSION:"([0-9.]+)"', body))
    assert versions == {SWAGGER_UI_VERSION.encode()}, versions
    assert SWAGGER_UI_VERSION.startswith("5."), SWAGGER_UI_VERSION


@pytest.mark.parametrize(
    "path",
    [
        "/api-docs/static/index.html",  # aiohttp-apispec's 4.1.0 page
        "/api-docs/static/oauth2-redirect.html",
        "/api-docs/static/swagger-ui-standalone-preset.js",
        "/api-docs/static/..%2F..%2Fapp.py",
    ],
)
async def test_the_old_swagger_ui_routes_are_gone(api: Api, path: str) -> None:
    status, body, headers = await get(api, path)
    assert status == 404, body[:200]
    assert headers["Content-Type"].startswith("application/json"), dict(headers)


async def test_the_initializer_fixes_our_document_and_ignores_the_query(api: Api) -> None:
    script = await initializer(api)
    assert re.search(r"\bqueryConfigEnabled:\s*false\b", script), script
    assert re.findall(r"\burl:\s*\"([^\"]*)\"", script) == [OPENAPI_JSON], script
    assert re.search(r"\bvalidatorUrl:\s*null\b", script), script
    for reader in ("configUrl", "urls", "location", "URLSearchParams", "search", "hash"):
        assert not re.search(rf"\b{reader}\b", script.split('"use strict";', 1)[-1]), reader


async def test_the_page_is_the_same_whatever_the_query(api: Api) -> None:
    _, plain, _ = await get(api, "/api-docs")
    for query in (f"?url={EVIL}", f"?configUrl={EVIL}", f"?url={EVIL}&configUrl={EVIL}"):
        status, body, _ = await get(api, "/api-docs" + query)
        assert (status, body) == (200, plain), query
    assert b"127.0.0.1:1" not in plain


async def test_an_asset_asked_for_by_its_hash_is_cached_and_revalidates(api: Api) -> None:
    parts = await page_parts(api)
    ref = local(api, parts.stylesheets[0])
    assert "?v=" in ref, ref
    _, _, fresh = await get(api, ref)
    assert "immutable" in fresh["Cache-Control"], dict(fresh)
    async with api.http.get(
        api.server.url + ref.split("?")[0], headers={"If-None-Match": fresh["ETag"]}
    ) as resp:
        assert resp.status == 304
