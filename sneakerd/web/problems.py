"""Every failure becomes docs/API.md's error envelope through one function, `problem`.

`{"error": {"code", "message", "details"?}}` with the status of docs/API.md's table and the
headers the answer needs (Retry-After, Allow, WWW-Authenticate). `problem` is the one place an
exception becomes that answer: the middleware sends it, and idempotency keeps it (status, body
and headers) to send again. Domain errors map by class, marshmallow's validation errors become
422 with per-field details, aiohttp's own HTTP errors (404, 405, 413) keep their status, a body
that cannot be read (a bad `Content-Encoding`, broken chunked framing) is a 400, and anything
unexpected is logged and answered with a bare 500 envelope: never an HTML page, never a stack
trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, overload

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from marshmallow import ValidationError

from sneakerd import errors

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_BY_CODE: dict[str, int] = {
    "not_found": 404,
    "out_of_stock": 409,
    "limit_reached": 409,
    "drop_not_live": 409,
    "drop_ended": 409,
    "reservation_not_active": 409,
    "reservation_expired": 409,
    "email_taken": 409,
    "username_taken": 409,
    "drop_has_sales": 409,
    "stock_below_committed": 409,
    "drop_paused": 409,
    "request_in_progress": 409,
    "raffle_only": 409,
    "not_a_raffle": 409,
    "already_entered": 409,
    "entries_not_open": 409,
    "entries_closed": 409,
    "not_admitted": 409,
    "idempotency_key_reused": 422,
    "validation_error": 422,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
}

PASSED_ON_HEADERS = ("allow", "retry-after")
"""The headers of aiohttp's own HTTP errors that the envelope keeps."""


class ApiError(Exception):
    """An error the edge raises as-is: status, docs/API.md code, message, optional details and
    headers (`problem` turns it into the answer)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


class Problem(NamedTuple):
    """An error as the client receives it: status, envelope, headers. Plain data, so that a
    kept answer (an Idempotency-Key's refusal) can be stored and sent again whole."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])

    def response(self) -> web.Response:
        return web.Response(
            body=orjson.dumps(self.body),
            status=self.status,
            content_type="application/json",
            headers=self.headers,
        )


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The envelope itself (also what the transport writes for a request aiohttp refused)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


@overload
def problem(exc: ApiError) -> Problem: ...
@overload
def problem(exc: BaseException) -> Problem | None: ...
def problem(exc: BaseException) -> Problem | None:
    """The answer for an exception we understand; None for a bug (the caller answers 500)."""
    if isinstance(exc, ApiError):
        return Problem(exc.status, error_body(exc.code, exc.message, exc.details), exc.headers)
    if isinstance(exc, errors.InvalidDrop):
        return Problem(422, error_body(exc.code, exc.message, {exc.field: [exc.message]}), {})
    if isinstance(exc, errors.DomainError):
        return Problem(STATUS_BY_CODE.get(exc.code, 409), error_body(exc.code, exc.message), {})
    if isinstance(exc, errors.OutcomeUnknown):
        message = (
            "The node deciding this request did not answer, so it may have been done: retry "
            "with the same Idempotency-Key to get what really happened."
        )
        return Problem(503, error_body("unavailable", message), {"Retry-After": "1"})
    if isinstance(exc, errors.Unavailable):
        message = "The service is briefly unavailable; nothing was done. Retry."
        return Problem(503, error_body("unavailable", message), {"Retry-After": "1"})
    if isinstance(exc, ValidationError):
        details = _field_messages(exc.messages)
        body = error_body("validation_error", "The request has invalid fields", details)
        return Problem(422, body, {})
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return _http_problem(exc)
    return None


def _http_problem(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (no route, wrong method, body too large) in the envelope."""
    if exc.status == 413:
        return Problem(413, error_body("payload_too_large", "The request body is too large"), {})
    code = HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "unavailable")
    message = "No such resource" if exc.status == 404 else (exc.reason or code)
    headers = {k: v for k, v in exc.headers.items() if k.lower() in PASSED_ON_HEADERS}
    return Problem(exc.status, error_body(code, message), headers)


def _field_messages(messages: Any) -> dict[str, Any]:
    if isinstance(messages, dict):
        return {str(k): v if isinstance(v, list | dict) else [str(v)] for k, v in messages.items()}
    return {"_schema": messages if isinstance(messages, list) else [str(messages)]}


def respond(error: ApiError) -> web.Response:
    """The answer to an `ApiError` built where it is known (not raised), as `problem` makes it."""
    return problem(error).response()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect or another answer that is not an error
            raise
        return _http_problem(exc).response()
    except (web.RequestPayloadError, HttpProcessingError):
        return _unreadable_body(request)
    except Exception as exc:
        found = problem(exc)
        if found is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return respond(ApiError(500, "internal_error", "Something went wrong on our side"))
        return found.response()


def _unreadable_body(request: web.Request) -> web.Response:
    """400 for a body aiohttp could not decode, on a connection closed after it.

    The stream past a broken body cannot be trusted, so the connection closes; and the body is
    marked finished, or aiohttp would try to read the rest of it before closing, meet the same
    error again and log it as unhandled.
    """
    request.content.feed_eof()
    response = respond(
        ApiError(400, "bad_request", "The request body could not be decoded (check its encoding)")
    )
    response.force_close()
    return response


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
