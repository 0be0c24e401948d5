"""CORS for the mount: the original's front-end runs on its own origin, `CLIENT_URL`.

As the native API does (through aiohttp-cors) the one allowed origin is `CLIENT_URL`; unlike
it, the mount's answers carry the headers whatever they are (404s, 405s and refusals made
before a route ran included), since the original's front-end reads the message of every
failure, and a browser hides the body of an answer without them. A request from another
origin gets no CORS headers (the browser then refuses it), and a preflight from one is a 403.
Without `CLIENT_URL` nothing is allowed cross-origin, as on the native API.
"""

from __future__ import annotations

from aiohttp import hdrs, web

ALLOW_METHODS = "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS"
"""As the original's CORS (Express's defaults): a method no route takes is then answered
405 with its message, rather than blocked by the browser before it is sent."""
ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key")
EXPOSE_HEADERS = "Retry-After, Idempotent-Replayed"
MAX_AGE = "600"


def allowed_origin(request: web.Request, client_url: str | None) -> str | None:
    """The origin to allow for this request: `CLIENT_URL` when the request comes from it (or
    names no origin, as a same-origin or non-browser client does), else None."""
    if not client_url:
        return None
    allowed = client_url.rstrip("/")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None and origin.rstrip("/") != allowed:
        return None
    return allowed


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in request.headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    )


def preflight_headers(request: web.Request, origin: str) -> dict[str, str] | None:
    """The headers of a preflight's 204; None when it asks for a header not allowed."""
    asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
    names = [h.strip().lower() for h in asked.split(",") if h.strip()]
    if any(name not in ALLOW_HEADERS for name in names):
        return None
    headers: dict[str, str] = {
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
        hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOW_METHODS,
        hdrs.ACCESS_CONTROL_MAX_AGE: MAX_AGE,
        hdrs.VARY: "Origin",
    }
    if names:
        headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(names)
    return headers


def stamp(response: web.StreamResponse, origin: str) -> None:
    """The CORS headers of an actual (not preflight) answer."""
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS
    response.headers[hdrs.VARY] = "Origin"
