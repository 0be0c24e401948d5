"""Assertions and calls shared by the REST tests (the `Api` of conftest.py does the HTTP).

- `assert_envelope` / `assert_error` / `assert_validation`: docs/API.md's JSON error envelope.
- `assert_drop`: the drop object of docs/API.md; `get_drop` fetches one and checks it.
- `reserve_call` / `purchase_call`: the raw (status, body) of a hold or a purchase;
  `reserve`: a hold that must succeed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.api.conftest import Api

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DROP_KEYS = {
    "id", "name", "brand", "description", "price", "imageUrl", "initialStock", "stock",
    "reserved", "sold", "perUserLimit", "startsAt", "endsAt", "status", "version",
    "createdAt", "updatedAt",
}  # fmt: skip
LEAKS = ("Traceback", 'File "', "sneakerd/", "Exception", "pymysql", "sqlite3")


def assert_envelope(status: int, body: Any, headers: Any = None) -> dict[str, Any]:
    """A 4xx with the JSON error envelope and nothing that looks like a traceback.

    With `headers`, the answer must also say it is JSON.
    """
    assert 400 <= status < 500, (status, body)
    if headers is not None:
        assert headers["Content-Type"].startswith("application/json"), headers
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    text = json.dumps(body)
    for leak in LEAKS:
        assert leak not in text, body
    return dict(error)


def assert_error(
    status: int, body: Any, expected: int, code: str, headers: Any = None
) -> dict[str, Any]:
    """Exactly `expected` with error `code`, in the envelope `assert_envelope` checks."""
    assert status == expected, body
    error = assert_envelope(status, body, headers)
    assert error["code"] == code, body
    return error


def assert_validation(status: int, body: Any, field: str) -> None:
    """A 422 validation_error whose details name `field` with at least one message."""
    error = assert_error(status, body, 422, "validation_error")
    details = error.get("details")
    assert isinstance(details, dict), body
    assert field in details, body
    messages = details[field]
    assert isinstance(messages, list) and messages, body
    assert all(isinstance(m, str) and m for m in messages), body


def assert_drop(drop: Any) -> None:
    assert isinstance(drop, dict)
    assert set(drop) >= DROP_KEYS, drop
    assert drop["stock"] + drop["reserved"] + drop["sold"] == drop["initialStock"], drop
    assert drop["status"] in {"upcoming", "live", "sold_out", "ended"}, drop
    for key in ("startsAt", "createdAt", "updatedAt"):
        assert ISO_MS.match(drop[key]), (key, drop)
    assert drop["endsAt"] is None or ISO_MS.match(drop["endsAt"]), drop
    assert re.fullmatch(r"-?\d+\.\d\d", drop["price"]), drop


async def get_drop(api: Api, drop_id: int) -> dict[str, Any]:
    """GET /api/drops/{id}: a 200 with a well-formed drop (stock + reserved + sold = initial)."""
    status, body, _ = await api.call("GET", f"/api/drops/{drop_id}")
    assert status == 200, body
    assert set(body) == {"drop"}
    assert_drop(body["drop"])
    return dict(body["drop"])


async def reserve_call(
    api: Api, token: str, drop_id: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    status, body, _ = await api.call(
        "POST", "/api/reservations", token=token, json={"dropId": drop_id}, headers=headers
    )
    return status, body


async def reserve(api: Api, token: str, drop_id: int) -> dict[str, Any]:
    status, body = await reserve_call(api, token, drop_id)
    assert status == 201, body
    return dict(body["reservation"])


async def purchase_call(
    api: Api, token: str, reservation_id: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    status, body, _ = await api.call(
        "POST",
        "/api/purchases",
        token=token,
        json={"reservationId": reservation_id},
        headers=headers,
    )
    return status, body
