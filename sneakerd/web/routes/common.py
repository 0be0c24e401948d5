"""What every route module needs: who is asking, path ids, and the document's error entries."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sneakerd.web import keys
from sneakerd.web.auth import Principal, bearer, forbidden
from sneakerd.web.problems import ApiError
from sneakerd.web.schemas import MAX_ID, ErrorOut

ERROR_TEXT = {
    400: "bad_request: the body is not JSON or has the wrong content type",
    401: "unauthorized: missing, invalid or expired token",
    403: "forbidden: admins only",
    404: "not_found",
    409: "a conflict with the drop's state (see the code)",
    413: "payload_too_large",
    422: "validation_error: `details` maps each field to its messages",
    429: "rate_limited: retry after the Retry-After header's seconds",
    503: "unavailable: the database is unreachable; nothing was done; retry after Retry-After",
}

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "type": "string",
    "required": False,
    "pattern": "^[ -~]{1,255}$",
    "description": "The same key from the same user returns the first answer again.",
}


def errors_doc(*statuses: int, conflicts: str = "") -> dict[int, dict[str, Any]]:
    docs: dict[int, dict[str, Any]] = {}
    for status in (*statuses, 503):
        text = ERROR_TEXT[status]
        if status == 409 and conflicts:
            text = f"one of: {conflicts}"
        docs[status] = {"schema": ErrorOut, "description": text}
    return docs


def principal(request: web.Request) -> Principal:
    return request.app[keys.TOKENS].verify(bearer(request))


def admin(request: web.Request) -> Principal:
    who = principal(request)
    if not who.is_admin:
        raise forbidden()
    return who


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive id from the path (the route's regex already made it digits)."""
    value = int(request.match_info[name])
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", "No such resource")
    return value
