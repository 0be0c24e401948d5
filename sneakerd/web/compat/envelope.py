"""The original API's envelope, and its numbered paging.

Success: `{"success": true, "message"?: "...", "data": {...}}`; a list adds `count` (items on
this page), `total`, `page` and `totalPages` beside `data`. Failure: `{"success": false,
"message": "...", "errors"?: [{"field", "message"}]}` (written by `failures`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from marshmallow import EXCLUDE, Schema, validate

from sneakerd.store import MAX_PAGE, Numbered
from sneakerd.web.jsonio import json_response
from sneakerd.web.schemas import QueryInt

Json = dict[str, Any]

DEFAULT_LIMIT = 10
"""The original's page size when a client names none."""


def ok(data: Json | None = None, *, status: int = 200, message: str | None = None) -> web.Response:
    body: Json = {"success": True}
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    return json_response(body, status)


def failed(message: str, errors: list[Json] | None = None) -> Json:
    body: Json = {"success": False, "message": message}
    if errors:
        body["errors"] = errors
    return body


@dataclass(frozen=True, slots=True)
class Paging:
    """A numbered page asked for: `page` from 1, `limit` rows a page."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class PagingQuery(Schema):
    """`page` and `limit` (unknown query keys ignored, as the native lists do)."""

    class Meta:
        unknown = EXCLUDE

    page = QueryInt(load_default=1, validate=validate.Range(min=1, max=10**9))
    limit = QueryInt(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_PAGE))


PAGING = PagingQuery()


def paging(request: web.Request, default_limit: int = DEFAULT_LIMIT) -> Paging:
    """The page the query asks for; a bad `page` or `limit` is a validation failure (400)."""
    loaded = PAGING.load(dict(request.query))
    limit = loaded["limit"] if "limit" in request.query else default_limit
    return Paging(loaded["page"], limit)


def listed(name: str, items: list[Json], found: Numbered[Any], asked: Paging) -> web.Response:
    """A numbered list's answer, the paging fields beside `data` as the original put them."""
    body: Json = {
        "success": True,
        "count": len(items),
        "total": found.total,
        "page": asked.page,
        "totalPages": math.ceil(found.total / asked.limit),
        "data": {name: items},
    }
    return json_response(body)
