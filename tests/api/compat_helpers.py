"""Calls and assertions for the /compat tests: the original front-end's requests (axios, from
its own origin) and the original API's envelope, with CORS on every answer.

`Compat` wraps an `Api` (conftest.py) and calls `/compat/api/...` with the front-end's
`Origin`; `ok` and `refused` check the envelope of a success and of a failure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.api.conftest import COMPAT_ORIGIN, Api
from tests.api.helpers import LEAKS

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PASSWORD = "hunter2hunter2"


def assert_cors(headers: Any) -> None:
    assert headers.get("Access-Control-Allow-Origin") == COMPAT_ORIGIN, dict(headers)


def ok(answer: tuple[int, Any, Any], status: int = 200) -> dict[str, Any]:
    """A success: `{success: true, data?, message?}`, CORS allowed; returns the body."""
    got, body, headers = answer
    assert got == status, body
    assert isinstance(body, dict) and body["success"] is True, body
    assert set(body) <= {"success", "message", "data", "count", "total", "page", "totalPages"}
    assert_cors(headers)
    return body


def refused(answer: tuple[int, Any, Any], status: int, message: str | None = None) -> str:
    """A failure: `{success: false, message, errors?}` with `status`, CORS allowed, nothing
    that looks like a traceback; `message`, when given, is exactly the message. Returns it."""
    got, body, headers = answer
    assert got == status, body
    assert isinstance(body, dict) and body["success"] is False, body
    assert set(body) <= {"success", "message", "errors"}, body
    assert isinstance(body["message"], str) and body["message"], body
    if message is not None:
        assert body["message"] == message, body
    text = json.dumps(body)
    for leak in LEAKS:
        assert leak not in text, body
    assert_cors(headers)
    return str(body["message"])


def field_errors(body: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in body.get("errors", []):
        assert set(entry) == {"field", "message"}, entry
        found.setdefault(entry["field"], []).append(entry["message"])
    return found


class Compat:
    """The original front-end's calls, on the /compat mount of `api`'s server."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, Any, Any]:
        sent = {"Origin": COMPAT_ORIGIN, **(headers or {})}
        return await self.api.call(
            method, "/compat/api" + path, token=token, json=json, headers=sent, data=data
        )

    async def register(self, username: str | None = None) -> tuple[dict[str, Any], str]:
        name = username or self.api.unique()
        body = ok(
            await self.call(
                "POST",
                "/users/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            ),
            201,
        )
        return dict(body["data"]["user"]), str(body["data"]["token"])

    async def admin(self) -> str:
        return await self.api.admin()

    async def drop(self, admin: str, **fields: Any) -> dict[str, Any]:
        payload = {"name": self.api.unique("drop"), "price": 199.99, "stock": 10, **fields}
        body = ok(await self.call("POST", "/drops", token=admin, json=payload), 201)
        return dict(body["data"]["drop"])

    async def get_drop(self, drop_id: int) -> dict[str, Any]:
        return dict(ok(await self.call("GET", f"/drops/{drop_id}"))["data"]["drop"])

    async def reserve(self, token: str, drop_id: int) -> dict[str, Any]:
        answer = await self.call("POST", "/reservations", token=token, json={"dropId": drop_id})
        return dict(ok(answer, 201)["data"])

    async def buy(self, token: str, reservation_id: int) -> dict[str, Any]:
        answer = await self.call(
            "POST", "/purchases", token=token, json={"reservationId": reservation_id}
        )
        return dict(ok(answer, 201)["data"])

    async def counts(self, drop_id: int) -> tuple[int, int, int]:
        """The drop's (stock, reserved, sold), which a refused act must leave as they were."""
        drop = await self.get_drop(drop_id)
        return drop["stock"], drop["reserved"], drop["sold"]
