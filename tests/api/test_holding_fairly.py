"""Holding fairly: `holdsPerUser` caps the holds one user makes on a drop in its lifetime, and
the sale window is a rule of the drop's actor, checked against the drop it is about to change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api
from tests.api.helpers import assert_error, assert_validation, get_drop, reserve, reserve_call


async def test_cancel_and_reserve_again_stops_at_holds_per_user(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=1)
    assert drop["holdsPerUser"] == 3
    _, token = await api.register()
    for _ in range(3):
        hold = await reserve(api, token, drop["id"])
        status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
        assert status == 200, body
    status, body = await reserve_call(api, token, drop["id"])
    error = assert_error(status, body, 409, "limit_reached")
    assert "3" in error["message"]
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"]) == (10, 0), after
    # Another shopper is not affected.
    _, other = await api.register()
    assert (await reserve_call(api, other, drop["id"]))[0] == 201


async def test_holds_per_user_is_set_on_create_and_changed_by_put(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, perUserLimit=5, holdsPerUser=1)
    assert drop["holdsPerUser"] == 1
    _, token = await api.register()
    await reserve(api, token, drop["id"])
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "limit_reached")
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"holdsPerUser": 2}
    )
    assert status == 200 and body["drop"]["holdsPerUser"] == 2, body
    assert (await reserve_call(api, token, drop["id"]))[0] == 201


async def test_holds_per_user_below_one_is_refused(api: Api, admin_token: str) -> None:
    for value in (0, -1, "3", 1.5, True):
        status, body, _ = await api.call(
            "POST",
            "/api/drops",
            token=admin_token,
            json={
                "name": api.unique("d"),
                "price": "10.00",
                "initialStock": 1,
                "holdsPerUser": value,
            },
        )
        assert_validation(status, body, "holdsPerUser")


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


async def test_two_edits_that_each_move_one_end_cannot_invert_the_window(
    api: Api, admin_token: str
) -> None:
    """Before, each PUT checked its window against the drop as it read it, outside the writer:
    both passed and left a drop that ends before it starts."""
    base = datetime.now(UTC) + timedelta(days=1)
    for _ in range(3):
        drop = await api.drop(
            admin_token, startsAt=_iso(base), endsAt=_iso(base + timedelta(hours=3))
        )
        path = f"/api/drops/{drop['id']}"
        later_start = {"startsAt": _iso(base + timedelta(hours=2))}
        earlier_end = {"endsAt": _iso(base + timedelta(hours=1))}
        answers = await asyncio.gather(
            api.call("PUT", path, token=admin_token, json=later_start),
            api.call("PUT", path, token=admin_token, json=earlier_end),
        )
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200, 422], answers
        refused = next(body for status, body, _ in answers if status == 422)
        assert_validation(422, refused, "endsAt")
        final = await get_drop(api, drop["id"])
        assert final["endsAt"] > final["startsAt"], final


async def test_a_put_that_moves_the_start_past_the_end_is_refused(
    api: Api, admin_token: str
) -> None:
    base = datetime.now(UTC) + timedelta(days=1)
    drop = await api.drop(admin_token, startsAt=_iso(base), endsAt=_iso(base + timedelta(hours=1)))
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{drop['id']}",
        token=admin_token,
        json={"startsAt": _iso(base + timedelta(hours=2))},
    )
    assert_validation(status, body, "endsAt")
    assert (await get_drop(api, drop["id"]))["startsAt"] == drop["startsAt"]
