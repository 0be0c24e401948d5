"""The API's documentation: typed apispec decorators, and the Swagger UI page that shows it.

The decorators wrap aiohttp-apispec's with types, so handlers stay typed under strict mypy. They
only attach documentation to a handler; validation is done in the handler with the same
marshmallow schemas, so the document and the behaviour share one definition.

The Swagger UI at `/api-docs` is a vendored Swagger UI 5 (`static/swagger/`, see VENDORED.md
there), not aiohttp-apispec's bundled 4.1.0: that one loaded any document named by `?url=` or
`?configUrl=` and sent no CSP, on the shop's origin where the shopper's token sits in
localStorage. This page takes no configuration from its address (`initializer.js`: a fixed
`url`, `queryConfigEnabled: false`), inlines nothing, and is served with a policy that lets it
load scripts and styles from this origin only, fetch from this origin only, and never be framed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp_apispec
from aiohttp import web

from sneakerd.web.error_catalog import ERROR_CODES
from sneakerd.web.routes.pages import Asset

SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_DIR = Path(__file__).resolve().parent / "static" / "swagger"
DOCS_PAGE = "/api-docs"
DOCS_STATIC = "/api-docs/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_TYPES = {".js": "text/javascript", ".css": "text/css"}
_ASSET_REF = re.compile(r'(?P<attr>src|href)="/api-docs/static/(?P<name>[A-Za-z0-9_.-]+)"')
DOCS_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""Swagger UI's icons are data: images in its stylesheet; "Try it out" fetches this origin."""

F = TypeVar("F", bound=Callable[..., Any])


ERROR_CODES_KEY = "x-error-codes"
"""Where `routes.common.errors_doc` lists an answer's codes (aiohttp-apispec drops the key)."""
ERROR_CODES_ATTR = "__sneakerd_error_codes__"


def docs(**kwargs: Any) -> Callable[[F], F]:
    """aiohttp-apispec's `docs`, which also keeps each error answer's codes on the handler,
    for the OpenAPI 3 document's examples (`openapi3.build`)."""
    codes = {
        int(status): list(answer[ERROR_CODES_KEY])
        for status, answer in kwargs.get("responses", {}).items()
        if ERROR_CODES_KEY in answer
    }
    decorate = aiohttp_apispec.docs(**kwargs)

    def wrap(handler: F) -> F:
        setattr(handler, ERROR_CODES_ATTR, codes)
        return cast(F, decorate(handler))

    return wrap


def error_codes(handler: object) -> dict[int, list[str]]:
    """The codes `docs` kept for a handler's error answers, by status."""
    return dict(getattr(handler, ERROR_CODES_ATTR, {}))


def request_schema(schema: Any, **kwargs: Any) -> Callable[[F], F]:
    """A JSON body, required by default."""
    kwargs.setdefault("required", True)
    return cast(Callable[[F], F], aiohttp_apispec.request_schema(schema, **kwargs))


def querystring_schema(schema: Any, **kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], aiohttp_apispec.querystring_schema(schema, **kwargs))


def response_schema(schema: Any, code: int = 200, **kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], aiohttp_apispec.response_schema(schema, code, **kwargs))


def polish(spec: dict[str, Any]) -> None:
    """Say in the document what the handlers enforce but apispec 3 does not write down: request
    bodies refuse unknown keys (marshmallow's RAISE), the error envelope's code is one of the
    catalogue's, and a replayed answer says so in `Idempotent-Replayed`."""
    definitions = spec.get("definitions", {})
    if "ErrorBody" in definitions:
        definitions["ErrorBody"]["properties"]["code"]["enum"] = sorted(ERROR_CODES)
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            _replayed_header(operation)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "body" and "example" in parameter:
                    # Swagger 2 names a parameter's example x-example (only bodies have one)
                    parameter["x-example"] = parameter.pop("example")
                ref = (
                    parameter.get("schema", {}).get("$ref", "")
                    if parameter.get("in") == "body"
                    else ""
                )
                name = ref.rsplit("/", 1)[-1]
                if name in definitions:
                    definitions[name]["additionalProperties"] = False


def _replayed_header(operation: dict[str, Any]) -> None:
    names = {p.get("name") for p in operation.get("parameters", [])}
    if "Idempotency-Key" not in names:
        return
    for status, answer in operation.get("responses", {}).items():
        if 200 <= int(status) < 300:
            answer.setdefault("headers", {})["Idempotent-Replayed"] = {
                "type": "string",
                "enum": ["true"],
                "description": "`true` when this is the first answer to the same "
                "Idempotency-Key, sent again; absent otherwise.",
            }


@dataclass(frozen=True)
class DocsSite:
    """The Swagger UI page and its scripts and styles, read once and served from memory.

    The page names each asset with its content hash (`?v=…`), so an asset asked for by its
    current hash may be cached for a year, while the page is revalidated on every visit.
    """

    page: Asset
    assets: dict[str, Asset]

    @classmethod
    def load(cls, directory: Path = SWAGGER_DIR) -> DocsSite:
        assets = {
            path.name: Asset.of(path.read_bytes(), _TYPES[path.suffix])
            for path in sorted(directory.iterdir())
            if path.is_file() and path.suffix in _TYPES
        }

        def versioned(match: re.Match[str]) -> str:
            asset = assets.get(match["name"])
            if asset is None:
                raise ValueError(f"the docs page references a missing file: {match['name']}")
            return f'{match["attr"]}="{DOCS_STATIC}{match["name"]}?v={asset.etag}"'

        page = _ASSET_REF.sub(versioned, (directory / "index.html").read_text("utf-8"))
        return cls(Asset.of(page.encode(), "text/html"), assets)


DOCS_SITE = web.AppKey("docs_site", DocsSite)


def _answer(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    headers = {
        "Cache-Control": cache_control,
        "ETag": f'"{asset.etag}"',
        "Content-Security-Policy": DOCS_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    if f'"{asset.etag}"' in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
    )


async def docs_page(request: web.Request) -> web.Response:
    """The same page whatever the query string: it configures nothing."""
    return _answer(request, request.app[DOCS_SITE].page, REVALIDATE)


async def docs_asset(request: web.Request) -> web.Response:
    asset = request.app[DOCS_SITE].assets.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    fresh = request.query.get("v") == asset.etag
    return _answer(request, asset, IMMUTABLE if fresh else REVALIDATE)


def add_swagger_ui(app: web.Application) -> None:
    app[DOCS_SITE] = DocsSite.load()
    app.router.add_get(DOCS_PAGE, docs_page)
    app.router.add_get(DOCS_STATIC + "{name:[A-Za-z0-9_.-]+}", docs_asset)
