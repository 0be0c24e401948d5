"""Operations endpoints: /healthz, /readyz, /metrics, /api-docs and the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.api.conftest import Api

# Every row of docs/API.md's REST table above /api-docs (the rows the document must list).
REST_TABLE = [
    ("post", "/api/users/register"),
    ("post", "/api/users/login"),
    ("get", "/api/users/profile"),
    ("put", "/api/users/profile"),
    ("get", "/api/drops"),
    ("get", "/api/drops/{}"),
    ("get", "/api/drops/{}/stats"),
    ("post", "/api/drops"),
    ("put", "/api/drops/{}"),
    ("delete", "/api/drops/{}"),
    ("post", "/api/reservations"),
    ("get", "/api/reservations/user"),
    ("get", "/api/reservations/{}"),
    ("delete", "/api/reservations/{}"),
    ("post", "/api/purchases"),
    ("get", "/api/purchases/user"),
    ("get", "/api/purchases/{}"),
    ("get", "/api/purchases/drop/{}"),
    ("get", "/api/admin/drops/{}/purchases"),
    ("get", "/api/admin/audit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
]
SPEC_LINK = re.compile(r"""["']([^"'\s]*(?:swagger|openapi)[^"'\s]*\.json)["']""")
SCRIPT_SRC = re.compile(r"""<script[^>]*\bsrc=["']([^"']+)["']""")
WITH_BODY = [(m, p) for m, p in REST_TABLE if m in ("post", "put")]


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


async def fetch(api: Api, url: str) -> tuple[int, str, Any]:
    async with api.http.get(url) as resp:
        return resp.status, await resp.text(), resp.headers


async def spec_url(api: Api) -> str:
    """The document's address, as the Swagger UI page (or a script it loads) names it."""
    page_url = api.server.url + "/api-docs"
    status, page, _ = await fetch(api, page_url)
    assert status == 200, page
    found = SPEC_LINK.findall(page)
    for script in SCRIPT_SRC.findall(page):
        _, text, _ = await fetch(api, urljoin(page_url, script))
        found += SPEC_LINK.findall(text)
    assert len(set(found)) == 1, found
    return urljoin(page_url, found[0])


async def load_spec(api: Api) -> dict[str, Any]:
    url = await spec_url(api)
    async with api.http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        spec = await resp.json(content_type=None)
    assert isinstance(spec, dict)
    return spec


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    base = spec.get("basePath", "").rstrip("/")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict):
                found[(method.lower(), normalise(base + path))] = operation
    return found


async def test_healthz_is_ok(api: Api) -> None:
    status, body, headers = await api.call("GET", "/healthz")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["status"] == "ok" and set(body) == {"status", "node"}
    assert isinstance(body["node"], str) and body["node"]


async def test_readyz_is_ready(api: Api) -> None:
    status, body, _ = await api.call("GET", "/readyz")
    assert status == 200, body


async def test_metrics_is_prometheus_text(api: Api) -> None:
    status, text, headers = await fetch(api, api.server.url + "/metrics")
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain"), headers
    assert re.search(r"^# TYPE \S+ (counter|gauge|histogram|summary)$", text, re.M), text
    assert re.search(r"^# HELP \S+ ", text, re.M), text


async def test_metrics_count_requests(api: Api) -> None:
    for _ in range(3):
        await api.call("GET", "/healthz")
    _, text, _ = await fetch(api, api.server.url + "/metrics")
    assert re.search(r"^# TYPE \S*request\S* counter$", text, re.M | re.I), text
    counted = [
        float(m.group(1))
        for m in re.finditer(r"^\S*request\S*_total(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M | re.I)
    ]
    assert counted and sum(counted) >= 3, text


async def test_api_docs_is_a_swagger_ui_page(api: Api) -> None:
    status, page, headers = await fetch(api, api.server.url + "/api-docs")
    assert status == 200, page
    assert headers["Content-Type"].startswith("text/html"), headers
    assert "swagger" in page.lower()
    assert "<html" in page.lower()


async def test_api_docs_points_at_the_expected_document(api: Api) -> None:
    assert await spec_url(api) == api.server.url + "/api/docs/openapi.json"


async def test_openapi_document_is_json_with_paths(api: Api) -> None:
    spec = await load_spec(api)
    assert "swagger" in spec or "openapi" in spec, list(spec)
    assert isinstance(spec["paths"], dict) and spec["paths"]


@pytest.mark.parametrize(("method", "path"), REST_TABLE)
async def test_openapi_document_lists_every_rest_row(api: Api, method: str, path: str) -> None:
    listed = operations(await load_spec(api))
    assert (method, path) in listed, sorted(listed)


@pytest.mark.parametrize(("method", "path"), WITH_BODY)
async def test_openapi_document_gives_each_request_body_a_schema(
    api: Api, method: str, path: str
) -> None:
    operation = operations(await load_spec(api))[(method, path)]
    in_body = [p for p in operation.get("parameters", []) if p.get("in") == "body"]
    request_body = operation.get("requestBody", {}).get("content", {})
    schemas = [p.get("schema") for p in in_body] + [c.get("schema") for c in request_body.values()]
    assert any(schemas), operation


@pytest.mark.parametrize(("method", "path"), REST_TABLE[:14])
async def test_openapi_document_describes_responses(api: Api, method: str, path: str) -> None:
    operation = operations(await load_spec(api))[(method, path)]
    assert operation.get("responses"), operation


async def test_metrics_show_garbage_collector_pauses(api: Api) -> None:
    """The server's settling full collection at start-up is already on /metrics."""
    _, text, _ = await fetch(api, api.server.url + "/metrics")
    assert "# TYPE sneakerd_gc_pause_seconds histogram" in text, text
    full = re.search(r'^sneakerd_gc_pause_seconds_count\{generation="2"\} ([0-9.e+]+)$', text, re.M)
    assert full is not None and float(full.group(1)) >= 1, text
    longest = re.search(
        r'^sneakerd_gc_pause_longest_seconds\{generation="2"\} ([0-9.e+-]+)$', text, re.M
    )
    assert longest is not None and float(longest.group(1)) > 0, text
