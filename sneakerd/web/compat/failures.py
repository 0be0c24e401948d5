"""Every refusal in the original API's words: one table from sneakerd's error codes to the
original's statuses, and the one function that writes a failure.

sneakerd decides every refusal (its domain, schemas, auth, limits); this only says it as the
original did. `problems.problem` makes the native answer of an exception, and the table
moves it to the original's status, keeping sneakerd's message (the real reason, which the
original's front-end shows the shopper) unless the table words it for that front-end.
Refusals the original never had (admin-only writes 403, rate limits 429, `unavailable` 503,
`drop_has_sales` and `stock_below_committed` 409, ...) keep their status and headers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from aiohttp import web

from sneakerd.web.compat.envelope import Json, failed
from sneakerd.web.problems import ApiError, Problem, problem

ACT = web.RequestKey("compat_act", str)
"""What a route does, where one code has two statuses in the original (see `TABLE`)."""
CANCEL = "cancel"


class Said(NamedTuple):
    """How the original answered a refusal: its status and, where sneakerd's message is not
    what its front-end shows, the words."""

    status: int
    message: str | None = None


TABLE: dict[tuple[str, str], Said] = {
    # Validation failures, and a request the rules refuse for the drop's state: 400.
    ("validation_error", ""): Said(400),
    ("bad_request", ""): Said(400),
    ("out_of_stock", ""): Said(400, "Out of stock"),
    ("limit_reached", ""): Said(400),
    ("drop_not_live", ""): Said(400),
    ("drop_ended", ""): Said(400),
    ("reservation_expired", ""): Said(400, "This reservation has expired"),
    # A missing or bad token, wrong credentials: 401.
    ("unauthorized", ""): Said(401),
    ("invalid_credentials", ""): Said(401, "Invalid email or password"),
    # Taken names: 409.
    ("email_taken", ""): Said(409),
    ("username_taken", ""): Said(409),
    # Unknown things, and a hold that is not active (any more): 404.
    ("not_found", ""): Said(404),
    ("reservation_not_active", ""): Said(404),
    # Cancelling a hold that is not active, expired included: 404.
    ("reservation_expired", CANCEL): Said(404, "This reservation is no longer active"),
    ("reservation_not_active", CANCEL): Said(404, "This reservation is no longer active"),
}

ROUTE_MISSING = "Route not found"


def failure(found: Problem, act: str = "") -> web.Response:
    """The original's answer for a native `Problem`."""
    error = found.body["error"]
    code, message = str(error["code"]), str(error["message"])
    said = TABLE.get((code, act)) or TABLE.get((code, "")) or Said(found.status)
    fields = _field_errors(error.get("details"))
    if fields and said.message is None:
        # The shopper reads `message`: name what is wrong rather than "invalid fields".
        message = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:3])
    body = failed(said.message or message, fields)
    return web.Response(
        body=orjson.dumps(body),
        status=said.status,
        content_type="application/json",
        headers=found.headers,
    )


def answer(exc: BaseException, act: str = "") -> web.Response | None:
    """The original's answer for an exception sneakerd understands; None for a bug."""
    if isinstance(exc, web.HTTPNotFound):
        return failure(problem(ApiError(404, "not_found", ROUTE_MISSING)), act)
    found = problem(exc)
    return None if found is None else failure(found, act)


def internal_error() -> web.Response:
    body = failed("Something went wrong on our side")
    return web.Response(body=orjson.dumps(body), status=500, content_type="application/json")


def native_failure(response: web.StreamResponse) -> Problem | None:
    """A native error envelope that reached the mount as a response rather than an exception
    (an Idempotency-Key's kept refusal, a refusal made before any route ran), to be said
    again in the original's words."""
    if response.status < 400 or not isinstance(response, web.Response):
        return None
    raw = response.body
    if not isinstance(raw, bytes) or not raw.startswith(b'{"error"'):
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    headers = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
    return Problem(response.status, body, headers)


def _field_errors(details: Any) -> list[Json]:
    """`{field: [messages]}` as the original's `[{field, message}]`, one entry a message."""
    if not isinstance(details, dict):
        return []
    found: list[Json] = []
    for field, messages in details.items():
        for message in _flat(messages):
            found.append(
                {"field": "body" if field == "_schema" else str(field), "message": message}
            )
    return found


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, list):
        return [m for item in messages for m in _flat(item)]
    if isinstance(messages, dict):
        return [m for item in messages.values() for m in _flat(item)]
    return [str(messages)]
