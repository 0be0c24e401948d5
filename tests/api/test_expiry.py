"""Holds expire on time (docs/API.md: within 250 ms of expiresAt, not on a sweep), on a server
of the test's own with RESERVATION_DURATION=1000."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.api.conftest import Api
from tests.api.helpers import get_drop, purchase_call, reserve

POLL_S = 0.01
MAX_LAG_S = 0.25


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def hold_status(api: Api, token: str, reservation_id: int) -> str:
    status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, body
    return str(next(r["status"] for r in body["reservations"] if r["id"] == reservation_id))


async def setup(
    start_api: Callable[..., Api], stock: int = 1
) -> tuple[Api, dict[str, Any], str, dict[str, Any]]:
    api = start_api(RESERVATION_DURATION="1000")
    admin = await api.admin()
    drop = await api.drop(admin, initialStock=stock)
    _, token = await api.register()
    return api, drop, token, await reserve(api, token, drop["id"])


async def test_hold_lasts_reservation_duration(start_api: Callable[..., Api]) -> None:
    _, _, _, hold = await setup(start_api)
    assert abs(epoch(hold["expiresAt"]) - epoch(hold["createdAt"]) - 1.0) < 0.01, hold


async def test_hold_expires_and_returns_its_unit_within_250_ms(
    start_api: Callable[..., Api],
) -> None:
    api, drop, token, hold = await setup(start_api)
    expires_at = epoch(hold["expiresAt"])
    expired_seen = stock_seen = None
    while expired_seen is None or stock_seen is None:
        asked = time.time()
        status_now = await hold_status(api, token, hold["id"])
        asked_drop = time.time()
        current = await get_drop(api, drop["id"])
        if status_now == "expired" and expired_seen is None:
            expired_seen = asked
        if current["stock"] == 1 and current["reserved"] == 0 and stock_seen is None:
            stock_seen = asked_drop
        if asked < expires_at - 0.02:
            assert status_now == "active", "the hold ended before expiresAt"
            assert current["reserved"] == 1, current
        assert asked < expires_at + 2, "the hold never expired"
        await asyncio.sleep(POLL_S)
    assert expired_seen - expires_at <= MAX_LAG_S, expired_seen - expires_at
    assert stock_seen - expires_at <= MAX_LAG_S, stock_seen - expires_at


async def test_purchase_after_expires_at_is_reservation_expired(
    start_api: Callable[..., Api],
) -> None:
    api, drop, token, hold = await setup(start_api)
    await asyncio.sleep(max(0.0, epoch(hold["expiresAt"]) - time.time()) + 0.005)
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 409, body
    assert body["error"]["code"] == "reservation_expired", body
    after = await get_drop(api, drop["id"])
    assert after["sold"] == 0, after


async def test_purchase_long_after_expiry_is_reservation_expired(
    start_api: Callable[..., Api],
) -> None:
    api, drop, token, hold = await setup(start_api)
    await asyncio.sleep(max(0.0, epoch(hold["expiresAt"]) - time.time()) + 0.5)
    assert await hold_status(api, token, hold["id"]) == "expired"
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 409, body
    assert body["error"]["code"] == "reservation_expired", body
    assert (await get_drop(api, drop["id"]))["sold"] == 0


async def test_cancel_after_expiry_is_refused_and_returns_nothing_twice(
    start_api: Callable[..., Api],
) -> None:
    api, drop, token, hold = await setup(start_api)
    await asyncio.sleep(max(0.0, epoch(hold["expiresAt"]) - time.time()) + 0.5)
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 409, body
    assert body["error"]["code"] in ("reservation_not_active", "reservation_expired"), body
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"]) == (1, 0), after


async def test_purchase_before_expiry_succeeds(start_api: Callable[..., Api]) -> None:
    api, drop, token, hold = await setup(start_api)
    await asyncio.sleep(max(0.0, epoch(hold["expiresAt"]) - time.time() - 0.3))
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    await asyncio.sleep(max(0.0, epoch(hold["expiresAt"]) - time.time()) + 0.3)
    assert await hold_status(api, token, hold["id"]) == "completed"
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (0, 0, 1), after
