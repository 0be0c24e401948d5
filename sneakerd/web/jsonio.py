"""JSON in and out with orjson: bodies are encoded once, straight to bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from sneakerd.web.problems import ApiError

JSON = "application/json"


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 `bad_request` for another content type or bad JSON. The
    body is read first, so one over `MAX_BODY_BYTES` is a 413 whatever its content type."""
    raw = await request.read()
    if request.content_type != JSON:
        raise ApiError(400, "bad_request", "Send a JSON body with Content-Type: application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "bad_request", "The body is not valid JSON") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body (anything else is a 422 naming the problem)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(
            422,
            "validation_error",
            "The body must be a JSON object",
            {"_schema": ["The body must be a JSON object"]},
        )
    return data
