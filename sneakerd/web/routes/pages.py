"""The shop window: `/` lists the drops, `/drops/{id}` shows one selling out live; `/admin` is
the operators' page.

Plain HTML, CSS and ES modules from `sneakerd/web/static/`, with no build step: the page talks
to the same REST API and WebSocket as any other client. The files are read once when the app is
made and served from memory. Each page names its assets with a content hash (`app.js?v=…`), so
an asset asked for by its current hash may be cached for a year, while the pages themselves are
revalidated on every visit (`no-cache` with an ETag): a new release is seen at once.

The modules import each other as `from "./name.js"`; each such specifier is pinned to the
imported module's hash when the files are read (`from "./name.js?v=…"`), and a module's own hash
is taken after that, so a change anywhere below a module changes its URL too and no browser
keeps a stale module under a year-long cache. Imports must therefore form no cycle.

Every answer carries a Content-Security-Policy that lets the page load only its own files and
connect only to its own origin (REST and WebSocket); product images may also come over https,
since a drop's `imageUrl` usually points at a CDN. None of these handlers carries apispec docs,
so the OpenAPI document keeps listing the API alone.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from sneakerd import errors
from sneakerd.web import keys
from sneakerd.web.schemas import MAX_ID

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PREFIX = "/static/"
PAGES = {"index": "index.html", "drop": "drop.html", "admin": "admin.html"}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_ASSET_REF = re.compile(r'(?P<attr>src|href)="/static/(?P<name>[A-Za-z0-9_.-]+)"')
_IMPORT_REF = re.compile(r'(?P<lead>\b(?:import|from)\s*)"\./(?P<name>[A-Za-z0-9_.-]+\.js)"')
"""A static `import … from "./name.js"` (or `export … from`, or a bare `import "./name.js"`)."""
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    """A strong validator: the first 16 hex digits of the body's SHA-256."""

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        return cls(body, content_type, _digest(body))


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def link_modules(sources: dict[str, bytes]) -> dict[str, bytes]:
    """Each `.js` source with its imports of sibling modules pinned to their content hashes.

    A module is linked after everything it imports, so its bytes (and hence its hash) change
    whenever any module below it does. A missing module or an import cycle is refused when the
    app is made, not found by a shopper.
    """
    linked: dict[str, bytes] = {}

    def link(name: str, importers: tuple[str, ...]) -> bytes:
        if name in linked:
            return linked[name]
        if name in importers:
            raise ValueError(f"static modules import in a cycle: {' -> '.join((*importers, name))}")
        if name not in sources:
            raise ValueError(f"{importers[-1]} imports a missing static file: {name}")

        def pinned(match: re.Match[str]) -> str:
            body = link(match["name"], (*importers, name))
            return f'{match["lead"]}"./{match["name"]}?v={_digest(body)}"'

        linked[name] = _IMPORT_REF.sub(pinned, sources[name].decode("utf-8")).encode("utf-8")
        return linked[name]

    for name in sources:
        if name.endswith(".js"):
            link(name, ())
    return {name: linked.get(name, body) for name, body in sources.items()}


@dataclass(frozen=True)
class Site:
    """The static files and the pages that reference them by content hash."""

    assets: dict[str, Asset]
    pages: dict[str, Asset]

    @classmethod
    def load(cls, directory: Path = STATIC_DIR) -> Site:
        sources = {
            path.name: path.read_bytes()
            for path in sorted(directory.iterdir())
            if path.is_file() and path.suffix != ".html" and not path.name.startswith(".")
        }
        linked = link_modules(sources)
        assets = {name: Asset.of(body, _content_type(name)) for name, body in linked.items()}

        def versioned(match: re.Match[str]) -> str:
            name = match["name"]
            asset = assets.get(name)
            if asset is None:
                raise ValueError(f"a page references a missing static file: {name}")
            return f'{match["attr"]}="{STATIC_PREFIX}{name}?v={asset.etag}"'

        pages = {
            key: Asset.of(
                _ASSET_REF.sub(versioned, (directory / name).read_text("utf-8")).encode(),
                "text/html",
            )
            for key, name in PAGES.items()
        }
        return cls(assets, pages)


SITE = web.AppKey("site", Site)


def _content_type(name: str) -> str:
    return _TYPES.get(Path(name).suffix) or (
        mimetypes.guess_type(name)[0] or "application/octet-stream"
    )


def content_security_policy(host: str | None) -> str:
    """Only this origin: its scripts, styles, images and fetches, and its WebSocket."""
    connect = "'self'"
    if host and _SAFE_HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' https: data:",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _answer(
    request: web.Request, asset: Asset, cache_control: str, status: int = 200
) -> web.Response:
    headers = {
        "Cache-Control": cache_control,
        "ETag": f'"{asset.etag}"',
        "Content-Security-Policy": content_security_policy(request.host),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    if status == 200 and f'"{asset.etag}"' in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(
        body=asset.body,
        status=status,
        content_type=asset.content_type,
        charset=charset,
        headers=headers,
    )


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def index_page(request: web.Request) -> web.Response:
    return _answer(request, request.app[SITE].pages["index"], REVALIDATE)


async def drop_page(request: web.Request) -> web.Response:
    """The drop's page; a 404 status (with the same page, which explains) for an unknown drop."""
    page = request.app[SITE].pages["drop"]
    drop_id = int(request.match_info["id"])
    if not 0 < drop_id <= MAX_ID:
        return _answer(request, page, REVALIDATE, status=404)
    try:
        drop = await request.app[keys.STORE].get_drop(drop_id)
    except errors.Unavailable:
        return _answer(request, page, REVALIDATE)  # the page retries and explains itself
    return _answer(request, page, REVALIDATE, status=200 if drop is not None else 404)


async def admin_page(request: web.Request) -> web.Response:
    """The operators' page; it signs in as an admin itself (every admin call checks the role)."""
    return _answer(request, request.app[SITE].pages["admin"], REVALIDATE)


async def static_file(request: web.Request) -> web.Response:
    asset = request.app[SITE].assets.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    fresh = request.query.get("v") == asset.etag
    return _answer(request, asset, IMMUTABLE if fresh else REVALIDATE)


def add_routes(app: web.Application) -> None:
    app[SITE] = Site.load()
    app.router.add_get("/", index_page)
    app.router.add_get(r"/drops/{id:\d{1,20}}", drop_page)
    app.router.add_get("/admin", admin_page)
    app.router.add_get(STATIC_PREFIX + "{name:[A-Za-z0-9_.-]+}", static_file)
