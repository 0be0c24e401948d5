"""The mount's middleware: everything under `/compat` is answered in the original's envelope
and carries its CORS headers, whatever answers it (a route, a refusal, aiohttp's 404 or 405).

It sits inside the app's error middleware and outside the edge checks, so it sees every
exception a compat route (or the edge) raises before the native envelope would be written,
and every response on the way out. Paths outside `/compat` pass straight through, untouched.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from sneakerd.web import keys
from sneakerd.web.compat import cors, failures
from sneakerd.web.compat.envelope import failed
from sneakerd.web.jsonio import json_response
from sneakerd.web.problems import Handler

log = logging.getLogger(__name__)

PREFIX = "/compat"
NO_STORE_PREFIX = PREFIX + "/api/users/"


def is_compat(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@web.middleware
async def compat_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_compat(request.path):
        return await handler(request)
    origin = cors.allowed_origin(request, request.app[keys.SETTINGS].client_url)
    if cors.is_preflight(request):
        return _preflight(request, origin)
    response = await _answer(request, handler)
    if origin is not None:
        cors.stamp(response, origin)
    if request.path.startswith(NO_STORE_PREFIX):
        response.headers[hdrs.CACHE_CONTROL] = "no-store"  # tokens and emails
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    act = request.get(failures.ACT, "")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        said = failures.answer(exc, request.get(failures.ACT, act))
        assert said is not None  # every HTTP error of 400 and up has an answer
        return said
    except (web.RequestPayloadError, HttpProcessingError):
        return _unreadable_body(request)
    except Exception as exc:
        said = failures.answer(exc, request.get(failures.ACT, act))
        if said is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return failures.internal_error()
        return said
    native = failures.native_failure(response)
    if native is not None:
        return failures.failure(native, request.get(failures.ACT, act))
    return response


def _preflight(request: web.Request, origin: str | None) -> web.Response:
    headers = None if origin is None else cors.preflight_headers(request, origin)
    if headers is None:
        return json_response(failed("This origin or header is not allowed (CORS)"), 403)
    return web.Response(status=204, headers=headers)


def _unreadable_body(request: web.Request) -> web.Response:
    """400 for a body that cannot be decoded, on a connection closed after it (the stream
    past a broken body cannot be trusted; see `problems.error_middleware`)."""
    request.content.feed_eof()
    response = json_response(
        failed("The request body could not be decoded (check its encoding)"), 400
    )
    response.force_close()
    return response
