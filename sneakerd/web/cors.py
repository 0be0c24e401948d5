"""CORS on the native API (CLIENT_URL): the shop's own origin may call it from a browser.

aiohttp-cors answers the preflights and adds the allow headers to the answers. Three things it
does not do, which this module adds:

- `Vary: Origin` on every answer: whether an answer carries the allow headers depends on the
  request's Origin, so a shared cache must not hand the shop's browser an answer it cached for
  another origin or for none.
- An OPTIONS request that is no preflight (no `Origin`, or no `Access-Control-Request-Method`:
  curl, a monitoring probe) gets what it gets without CLIENT_URL, `405` with the route's
  methods in `Allow`, instead of aiohttp-cors's bare `403`, which in this API means "your role
  may not".
- A preflight it refuses (another origin, a method or header not allowed) says why in the
  error envelope's message, as aiohttp-cors's own text does, instead of a bare "Forbidden".

The /compat edge has its own CORS (`web/compat/cors.py`), for the original's every-origin
answers; none of this applies to it.
"""

from __future__ import annotations

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from sneakerd.web import access
from sneakerd.web.problems import ApiError

ALLOW_METHODS = ("GET", "POST", "PUT", "DELETE")
ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", access.HEADER)
EXPOSE_HEADERS = ("Retry-After", "Idempotent-Replayed", access.HEADER)


def setup(app: web.Application, origin: str | None) -> None:
    """Let `origin` (CLIENT_URL) call every route of `app` from a browser; nothing if None."""
    if not origin:
        return
    cors = aiohttp_cors.setup(
        app,
        defaults={
            origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=False,
                expose_headers=EXPOSE_HEADERS,
                allow_headers=ALLOW_HEADERS,
                allow_methods=list(ALLOW_METHODS),
            )
        },
    )
    for route in list(app.router.routes()):
        if route.method != "HEAD":
            cors.add(route)
    # Innermost: what it raises goes through the error middleware like any handler's error.
    app.middlewares.append(preflights_only)
    app.on_response_prepare.append(vary_by_origin)


@web.middleware
async def preflights_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """OPTIONS reaches aiohttp-cors's preflight handler only as a preflight (see the module)."""
    if request.method != hdrs.METH_OPTIONS:
        return await handler(request)
    methods = _methods(request)
    if methods is None or hdrs.METH_OPTIONS not in methods:
        return await handler(request)  # no route, or one without aiohttp-cors's OPTIONS
    if hdrs.ORIGIN not in request.headers or (
        hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers
    ):
        raise web.HTTPMethodNotAllowed(request.method, methods - {hdrs.METH_OPTIONS})
    try:
        return await handler(request)
    except web.HTTPForbidden as exc:
        reason = (exc.text or "").removeprefix("CORS preflight request failed: ")
        raise ApiError(403, "forbidden", f"CORS preflight refused: {reason}") from None


def _methods(request: web.Request) -> set[str] | None:
    """The methods the matched route's resource answers, or None when nothing matched."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return {route.method for route in resource}


async def vary_by_origin(request: web.Request, response: web.StreamResponse) -> None:
    """`Vary: Origin` on every answer (see the module); aiohttp-cors does not add it."""
    vary = response.headers.get(hdrs.VARY, "")
    if "origin" not in (v.strip().lower() for v in vary.split(",")):
        response.headers[hdrs.VARY] = f"{vary}, Origin" if vary.strip() else "Origin"
