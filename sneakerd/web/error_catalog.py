"""Every error code sneakerd can answer with, its status, and an example envelope of each.

The API documents list this catalogue (the `code` enum of the error envelope, and one example
per code under each status an operation can answer), so it is built from the same tables that
`problems` answers from: the domain errors' codes (`errors.DOMAIN_ERRORS`, by their status in
`problems.STATUS_BY_CODE`), aiohttp's own refusals (`problems.HTTP_CODES`), and the few codes
the edge raises by name. A test reads the source for every code an `ApiError` or
`error_body` is given and checks that it is here, so the documents cannot fall behind the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sneakerd.errors import DOMAIN_ERRORS
from sneakerd.web.problems import HTTP_CODES, STATUS_BY_CODE, error_body

EDGE_CODES: dict[str, int] = {
    "invalid_credentials": 401,
    "unavailable": 503,
    "internal_error": 500,
}
"""Codes the edge raises by name that neither table above holds."""

ERROR_CODES: dict[str, int] = {
    **{code: status for status, code in HTTP_CODES.items()},
    **{code: STATUS_BY_CODE.get(code, 409) for code in DOMAIN_ERRORS},
    **STATUS_BY_CODE,
    **EDGE_CODES,
}
"""Each code with the status it is answered with (`unavailable` is also a 504's code when
aiohttp itself times a request out)."""

RETRY_AFTER_CODES = frozenset({"rate_limited", "unavailable", "request_in_progress"})
"""Codes whose answers carry a Retry-After header."""

_MESSAGES = {
    "bad_request": "The request body is not valid JSON",
    "unauthorized": "Missing, invalid or expired token",
    "invalid_credentials": "Wrong email or password",
    "forbidden": "Admins only",
    "not_found": "No such resource",
    "method_not_allowed": "Method Not Allowed",
    "payload_too_large": "The request body is too large",
    "validation_error": "The request has invalid fields",
    "idempotency_key_reused": (
        "This Idempotency-Key was used for another request; use a new key for this one"
    ),
    "request_in_progress": (
        "A request with this Idempotency-Key is still running; retry shortly for its answer"
    ),
    "rate_limited": "Too many requests; retry after Retry-After seconds",
    "unavailable": "The service is briefly unavailable; nothing was done. Retry.",
    "internal_error": "Something went wrong on our side",
}
_DETAILS: dict[str, dict[str, Any]] = {
    "validation_error": {"dropId": ["Missing data for required field."]},
}


def status_of(code: str) -> int:
    return ERROR_CODES[code]


def codes_for(status: int) -> list[str]:
    """Every code answered with `status`, in a stable order."""
    return sorted(code for code, s in ERROR_CODES.items() if s == status)


def example(code: str) -> dict[str, Any]:
    """The envelope of `code`, as a client would see it."""
    domain = DOMAIN_ERRORS.get(code)
    message = _MESSAGES.get(code) or (
        domain.default_message() if domain else code.replace("_", " ").capitalize()
    )
    return error_body(code, message, _DETAILS.get(code))


def examples(codes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """OpenAPI 3 `examples`: one named example per code."""
    return {code: {"summary": code, "value": example(code)} for code in codes}
