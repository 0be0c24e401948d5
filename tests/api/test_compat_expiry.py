"""A hold that runs out, seen through /compat on both stores, on a server of the test's own
with RESERVATION_DURATION=1000: it reads `expired` (is_expired, no seconds left), its unit is
back, buying it is the original's 400 and cancelling it its 404."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from tests.api.compat_helpers import Compat, ok, refused
from tests.api.conftest import COMPAT_ORIGIN, Api

POLL_S = 0.02
GIVE_UP_S = 5.0


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_an_expired_hold_reads_expired_and_cannot_be_bought_or_cancelled(
    start_api: Callable[..., Api],
) -> None:
    c = Compat(start_api(RESERVATION_DURATION="1000", CLIENT_URL=COMPAT_ORIGIN))
    admin = await c.admin()
    drop = await c.drop(admin, stock=1)
    _, token = await c.register()
    made = await c.reserve(token, drop["id"])
    hold = made["reservation"]
    assert hold["remaining_seconds"] == 1 and made["drop"]["stock"] == 0
    assert abs(epoch(hold["expires_at"]) - time.time()) < 1.5

    deadline = time.monotonic() + GIVE_UP_S
    while True:
        read = ok(await c.call("GET", f"/reservations/{hold['id']}", token=token))
        seen = read["data"]["reservation"]
        if seen["status"] == "expired":
            break
        assert time.monotonic() < deadline, "the hold never expired"
        await asyncio.sleep(POLL_S)
    assert (seen["is_active"], seen["is_expired"], seen["remaining_seconds"]) == (False, True, 0)
    assert await c.counts(drop["id"]) == (1, 0, 0)

    buy = await c.call("POST", "/purchases", token=token, json={"reservationId": hold["id"]})
    refused(buy, 400, "This reservation has expired")
    cancel = await c.call("DELETE", f"/reservations/{hold['id']}", token=token)
    refused(cancel, 404, "This reservation is no longer active")
    assert await c.counts(drop["id"]) == (1, 0, 0)
    expired = ok(await c.call("GET", "/reservations/user?status=expired", token=token))
    assert [r["id"] for r in expired["data"]["reservations"]] == [hold["id"]]
    active = ok(await c.call("GET", "/reservations/user?status=active", token=token))
    assert active["count"] == 0
