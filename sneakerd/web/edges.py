"""What every answer carries, and the refusals made before any route runs.

- Headers: `Server: sneakerd` (never the Python and aiohttp versions), `X-Content-Type-Options:
  nosniff` on everything, and `Cache-Control: no-store` on `/api/users/...`, whose answers carry
  tokens and emails that no shared cache or browser history may keep.
- A connection over its address's cap (see `transport.GuardedHandler`) is answered 429 and
  closed as soon as its request head is read.
- A path number longer than any id is 404 here, before a route's `int()` meets Python's
  4,300-digit limit for converting strings to integers (a `ValueError`, which was a 500).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import hdrs, web

from sneakerd.web.problems import ApiError, Handler, respond, retry_after
from sneakerd.web.schemas import MAX_ID

SERVER_NAME = "sneakerd"
NO_STORE_PREFIX = "/api/users/"
MAX_ID_DIGITS = len(str(MAX_ID))
REFUSED_RETRY_SECONDS = 1.0


def stamp(headers: MutableMapping[str, str]) -> None:
    """The headers every response carries."""
    headers[hdrs.SERVER] = SERVER_NAME
    headers["X-Content-Type-Options"] = "nosniff"


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    stamp(response.headers)
    if request.path.startswith(NO_STORE_PREFIX):
        response.headers[hdrs.CACHE_CONTROL] = "no-store"


def over_connection_cap(request: web.Request) -> bool:
    return bool(getattr(request.protocol, "over_cap", False))


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if over_connection_cap(request):
        response = respond(
            ApiError(
                429,
                "rate_limited",
                "Too many open connections from your address; close some and retry",
                headers=retry_after(REFUSED_RETRY_SECONDS),
            )
        )
        response.force_close()
        return response
    for value in request.match_info.values():
        if len(value) > MAX_ID_DIGITS and value.isdigit():
            raise ApiError(404, "not_found", "No such resource")
    return await handler(request)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(on_prepare)
