"""What every route module needs: who is asking, path ids, and the document's error entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sneakerd.domain.audit import CLI_ACTOR, user_actor
from sneakerd.web import keys
from sneakerd.web.apidoc import ERROR_CODES_KEY
from sneakerd.web.auth import Principal, bearer, forbidden, unauthorized
from sneakerd.web.error_catalog import RETRY_AFTER_CODES, example, status_of
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

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "out_of_stock",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}
RETRY_AFTER_HEADER = {
    "type": "integer",
    "description": "Seconds to wait before retrying (the same Idempotency-Key may be reused).",
}

IDEMPOTENT_422 = {422: "validation_error, idempotency_key_reused"}
"""The 422s of a write that takes an Idempotency-Key."""

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "type": "string",
    "required": False,
    "pattern": "^[ -~]{1,255}$",
    "description": "The same key from the same user returns the first answer again.",
}


def errors_doc(
    *statuses: int, conflicts: str = "", codes: Mapping[int, str] | None = None
) -> dict[int, dict[str, Any]]:
    """The error answers of an operation (503 always), each with an example per code.

    `conflicts` lists the 409 codes ("out_of_stock, limit_reached"); `codes` names the codes of
    any other status where they are not the usual one (login's 401 is `invalid_credentials`).
    The codes travel under `ERROR_CODES_KEY`, which `apidoc.docs` keeps for the OpenAPI 3
    document's named examples (Swagger 2 can show one example per answer: the first).
    """
    named = {409: conflicts} if conflicts else {}
    named.update(codes or {})
    docs: dict[int, dict[str, Any]] = {}
    for status in (*statuses, 503):
        text = ERROR_TEXT[status]
        listed = named.get(status)
        found = [c.strip() for c in listed.split(",")] if listed else [DEFAULT_CODES[status]]
        assert all(status_of(code) == status for code in found), (status, found)
        if listed:
            text = f"one of: {', '.join(found)}"
        entry: dict[str, Any] = {
            "schema": ErrorOut,
            "description": text,
            "examples": {"application/json": example(found[0])},
            ERROR_CODES_KEY: found,
        }
        if RETRY_AFTER_CODES.intersection(found):
            entry["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
        docs[status] = entry
    return docs


def principal(request: web.Request) -> Principal:
    """Who asks, a user: the operator CLI's token is good for admin requests only."""
    who = request.app[keys.TOKENS].verify(bearer(request))
    if who.is_cli:
        raise unauthorized("The operator CLI's token is good for admin requests only")
    return who


def admin(request: web.Request) -> Principal:
    """An admin, or the operator CLI (which changes a drop through this server's actor)."""
    who = request.app[keys.TOKENS].verify(bearer(request))
    if not who.is_admin:
        raise forbidden()
    return who


def actor_of(who: Principal) -> str:
    """Who an admin write is logged as: `user:<id>`, or `cli` for the operator CLI."""
    return CLI_ACTOR if who.is_cli else user_actor(who.user_id)


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive id from the path (the route's regex already made it digits)."""
    value = int(request.match_info[name])
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", "No such resource")
    return value
