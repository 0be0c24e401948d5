"""Drops over HTTP: list, get, create, update, delete (docs/API.md, REST and Objects)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Api
from tests.api.helpers import (
    assert_drop,
    assert_error,
    assert_validation,
    get_drop,
    purchase_call,
    reserve,
    reserve_call,
)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now() -> datetime:
    return datetime.now(UTC)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def ended_drop(api: Api, admin_token: str) -> dict[str, Any]:
    """A drop whose window closed a moment ago (made live, then waited out)."""
    ends = now() + timedelta(milliseconds=700)
    drop = await api.drop(admin_token, endsAt=iso(ends))
    await asyncio.sleep(max(0.0, ends.timestamp() - time.time()) + 0.1)
    return drop


# --- create -----------------------------------------------------------------------------------


async def test_create_returns_the_full_drop_with_defaults(api: Api, admin_token: str) -> None:
    name = api.unique("drop")
    before = time.time()
    status, body, _ = await api.call(
        "POST",
        "/api/drops",
        token=admin_token,
        json={"name": name, "price": "199.99", "initialStock": 10},
    )
    assert status == 201, body
    assert set(body) == {"drop"}
    drop = body["drop"]
    assert_drop(drop)
    assert isinstance(drop["id"], int) and drop["id"] > 0
    assert drop["name"] == name
    assert drop["price"] == "199.99"
    assert (drop["initialStock"], drop["stock"], drop["reserved"], drop["sold"]) == (10, 10, 0, 0)
    assert drop["perUserLimit"] == 1
    assert drop["endsAt"] is None
    assert drop["status"] == "live"
    assert isinstance(drop["version"], int)
    assert abs(epoch(drop["createdAt"]) - before) < 30


@pytest.mark.parametrize(
    ("price", "shown"),
    [
        ("199.99", "199.99"),
        (120, "120.00"),
        (99.5, "99.50"),
        ("15", "15.00"),
        (0.1, "0.10"),
        ("0", "0.00"),
        (-0.0, "0.00"),
    ],
)
async def test_create_accepts_price_as_string_or_number(
    api: Api, admin_token: str, price: Any, shown: str
) -> None:
    drop = await api.drop(admin_token, price=price)
    assert drop["price"] == shown
    assert (await get_drop(api, drop["id"]))["price"] == shown


# Strings outside the documented pattern ^[0-9]{1,10}(\.[0-9]{1,2})?$ and numbers that are not a
# finite, non-negative amount with at most two decimals (docs/API.md: price).
BAD_PRICES = [
    "1_000",
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    " 12 ",
    "1e3",
    "-0",
    "+5",
    "1.001",
    "Infinity",
    True,
    -0.01,
    1.005,
    1e-3,
]


@pytest.mark.parametrize("price", BAD_PRICES)
async def test_create_refuses_a_price_outside_the_documented_rule(
    api: Api, admin_token: str, price: Any
) -> None:
    payload = {"name": api.unique("drop"), "price": price, "initialStock": 5}
    status, body, _ = await api.call("POST", "/api/drops", token=admin_token, json=payload)
    assert_validation(status, body, "price")


@pytest.mark.parametrize("price", BAD_PRICES)
async def test_update_refuses_a_price_outside_the_documented_rule(
    api: Api, admin_token: str, price: Any
) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"price": price}
    )
    assert_validation(status, body, "price")
    assert await get_drop(api, drop["id"]) == drop


async def test_create_keeps_every_optional_field(api: Api, admin_token: str) -> None:
    starts = now() + timedelta(days=30)
    ends = starts + timedelta(hours=2)
    drop = await api.drop(
        admin_token,
        brand="Nike",
        description="Air Max 1 '86 OG — “Big Bubble”",
        imageUrl="https://cdn.example.com/am1.png",
        perUserLimit=3,
        startsAt=iso(starts),
        endsAt=iso(ends),
    )
    assert drop["brand"] == "Nike"
    assert drop["description"] == "Air Max 1 '86 OG — “Big Bubble”"
    assert drop["imageUrl"] == "https://cdn.example.com/am1.png"
    assert drop["perUserLimit"] == 3
    assert drop["startsAt"] == iso(starts)
    assert drop["endsAt"] == iso(ends)
    assert drop["status"] == "upcoming"
    assert await get_drop(api, drop["id"]) == drop


async def test_create_returns_times_in_utc_with_milliseconds(api: Api, admin_token: str) -> None:
    drop = await api.drop(
        admin_token, startsAt="2031-06-01T12:30:00+02:00", endsAt="2031-06-01T14:00:00.5+02:00"
    )
    assert drop["startsAt"] == "2031-06-01T10:30:00.000Z"
    assert drop["endsAt"] == "2031-06-01T12:00:00.500Z"


async def test_create_with_zero_stock_is_sold_out(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=0)
    assert (drop["initialStock"], drop["stock"], drop["status"]) == (0, 0, "sold_out")


async def test_create_without_required_fields_names_each(api: Api, admin_token: str) -> None:
    status, body, _ = await api.call("POST", "/api/drops", token=admin_token, json={})
    for field in ("name", "price", "initialStock"):
        assert_validation(status, body, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", None),
        ("price", "abc"),
        ("price", "-5.00"),
        ("price", None),
        ("price", [1]),
        ("initialStock", -1),
        ("initialStock", "many"),
        ("initialStock", 1.5),
        ("initialStock", None),
        ("perUserLimit", 0),
        ("perUserLimit", -2),
        ("perUserLimit", "x"),
        ("startsAt", "not a date"),
        ("startsAt", "2030-13-45T00:00:00Z"),
        ("endsAt", "yesterday"),
        ("brand", 42),
        ("imageUrl", {"url": "x"}),
    ],
)
async def test_create_rejects_bad_value(api: Api, admin_token: str, field: str, value: Any) -> None:
    payload = {"name": api.unique("drop"), "price": "10.00", "initialStock": 5, field: value}
    status, body, _ = await api.call("POST", "/api/drops", token=admin_token, json=payload)
    assert_validation(status, body, field)


async def test_create_rejects_end_before_start(api: Api, admin_token: str) -> None:
    starts = now() + timedelta(days=2)
    payload = {
        "name": api.unique("drop"),
        "price": "10.00",
        "initialStock": 5,
        "startsAt": iso(starts),
        "endsAt": iso(starts - timedelta(hours=1)),
    }
    status, body, _ = await api.call("POST", "/api/drops", token=admin_token, json=payload)
    error = assert_error(status, body, 422, "validation_error")
    assert error.get("details"), body


async def test_create_by_customer_is_forbidden(api: Api) -> None:
    _, token = await api.register()
    status, body, _ = await api.call(
        "POST", "/api/drops", token=token, json={"name": "x", "price": "1.00", "initialStock": 1}
    )
    assert_error(status, body, 403, "forbidden")


async def test_create_without_token_is_unauthorized(api: Api) -> None:
    status, body, _ = await api.call(
        "POST", "/api/drops", json={"name": "x", "price": "1.00", "initialStock": 1}
    )
    assert_error(status, body, 401, "unauthorized")


# --- get and list -----------------------------------------------------------------------------


async def test_get_returns_the_drop(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, brand="Adidas")
    assert await get_drop(api, drop["id"]) == drop


async def test_get_unknown_drop_is_not_found(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/drops/987654321")
    assert_error(status, body, 404, "not_found")


async def test_list_contains_created_drops(api: Api, admin_token: str) -> None:
    first = await api.drop(admin_token)
    second = await api.drop(admin_token)
    status, body, _ = await api.call("GET", "/api/drops")
    assert status == 200, body
    assert set(body) == {"drops", "nextCursor"}
    for drop in body["drops"]:
        assert_drop(drop)
    by_id = {d["id"]: d for d in body["drops"]}
    assert by_id[first["id"]] == first
    assert by_id[second["id"]] == second


async def test_list_filters_by_status(api: Api, admin_token: str) -> None:
    ended = await ended_drop(api, admin_token)
    upcoming = await api.drop(admin_token, startsAt=iso(now() + timedelta(days=3)))
    sold_out = await api.drop(admin_token, initialStock=0)
    live = await api.drop(admin_token)
    expected = {"ended": ended, "upcoming": upcoming, "sold_out": sold_out, "live": live}
    for status_name, drop in expected.items():
        status, body, _ = await api.call("GET", f"/api/drops?status={status_name}")
        assert status == 200, body
        assert all(d["status"] == status_name for d in body["drops"]), (status_name, body)
        ids = {d["id"] for d in body["drops"]}
        assert drop["id"] in ids, status_name
        others = {d["id"] for s, d in expected.items() if s != status_name}
        assert not ids & others, status_name


@pytest.mark.parametrize("value", ["bogus", "LIVE", "", "' OR 1=1 --"])
async def test_list_with_unknown_status_is_rejected(api: Api, value: str) -> None:
    status, body, _ = await api.call("GET", f"/api/drops?status={quote(value)}")
    assert_validation(status, body, "status")


# --- update -----------------------------------------------------------------------------------


async def test_update_changes_fields_and_bumps_version(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    changes = {
        "name": api.unique("renamed"),
        "brand": "New Balance",
        "description": "990v6",
        "price": 250,
        "imageUrl": "https://cdn.example.com/990.png",
        "perUserLimit": 2,
    }
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json=changes
    )
    assert status == 200, body
    updated = body["drop"]
    assert_drop(updated)
    for key, value in changes.items():
        assert updated[key] == ("250.00" if key == "price" else value), key
    assert updated["version"] > drop["version"]
    assert updated["createdAt"] == drop["createdAt"]
    assert epoch(updated["updatedAt"]) >= epoch(drop["updatedAt"])
    assert await get_drop(api, drop["id"]) == updated


async def test_update_of_one_field_leaves_the_others(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, brand="Asics", perUserLimit=4)
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"description": "GT-2160"}
    )
    assert status == 200, body
    updated = body["drop"]
    assert updated["description"] == "GT-2160"
    for key in ("name", "brand", "price", "perUserLimit", "initialStock", "stock", "startsAt"):
        assert updated[key] == drop[key], key


async def test_update_restock_raises_stock(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10)
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"initialStock": 15}
    )
    assert status == 200, body
    assert (body["drop"]["initialStock"], body["drop"]["stock"]) == (15, 15)


async def commit_two_holds_and_a_sale(api: Api, drop_id: int) -> None:
    for _ in range(2):
        _, token = await api.register()
        await reserve(api, token, drop_id)
    _, token = await api.register()
    hold = await reserve(api, token, drop_id)
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body


async def test_update_can_lower_stock_to_what_is_committed(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10)
    await commit_two_holds_and_a_sale(api, drop["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"initialStock": 3}
    )
    assert status == 200, body
    updated = body["drop"]
    assert_drop(updated)
    assert (updated["initialStock"], updated["stock"]) == (3, 0)
    assert (updated["reserved"], updated["sold"]) == (2, 1)
    assert updated["status"] == "sold_out"


async def test_update_below_committed_is_refused(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10)
    await commit_two_holds_and_a_sale(api, drop["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"initialStock": 2}
    )
    assert_error(status, body, 409, "stock_below_committed")
    after = await get_drop(api, drop["id"])
    assert (after["initialStock"], after["stock"]) == (10, 7)
    assert (after["reserved"], after["sold"]) == (2, 1)


async def test_update_sale_window_moves_the_status(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    assert drop["status"] == "live"
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{drop['id']}",
        token=admin_token,
        json={"startsAt": "2032-03-01T09:00:00+01:00", "endsAt": "2032-03-02T09:00:00Z"},
    )
    assert status == 200, body
    updated = body["drop"]
    assert updated["startsAt"] == "2032-03-01T08:00:00.000Z"
    assert updated["endsAt"] == "2032-03-02T09:00:00.000Z"
    assert updated["status"] == "upcoming"
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "drop_not_live")


async def test_update_accepts_the_drop_object_as_returned(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=4)
    _, token = await api.register()
    await reserve(api, token, drop["id"])
    current = await get_drop(api, drop["id"])
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{drop['id']}",
        token=admin_token,
        json={**current, "name": "edited in a form"},
    )
    assert status == 200, body
    updated = body["drop"]
    assert updated["name"] == "edited in a form"
    assert (updated["initialStock"], updated["stock"], updated["reserved"]) == (4, 3, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("initialStock", -1), ("perUserLimit", 0), ("price", "abc"), ("name", ""), ("startsAt", "x")],
)
async def test_update_rejects_bad_value(api: Api, admin_token: str, field: str, value: Any) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={field: value}
    )
    assert_validation(status, body, field)
    assert await get_drop(api, drop["id"]) == drop


async def test_update_by_customer_is_forbidden(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=token, json={"name": "mine now"}
    )
    assert_error(status, body, 403, "forbidden")
    assert (await get_drop(api, drop["id"]))["name"] == drop["name"]


async def test_update_without_token_is_unauthorized(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("PUT", f"/api/drops/{drop['id']}", json={"name": "x"})
    assert_error(status, body, 401, "unauthorized")


async def test_update_unknown_drop_is_not_found(api: Api, admin_token: str) -> None:
    status, body, _ = await api.call(
        "PUT", "/api/drops/987654321", token=admin_token, json={"name": "x"}
    )
    assert_error(status, body, 404, "not_found")


# --- delete -----------------------------------------------------------------------------------


async def test_delete_removes_the_drop(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert status == 204, body
    assert body is None
    status, body, _ = await api.call("GET", f"/api/drops/{drop['id']}")
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call("GET", "/api/drops")
    assert drop["id"] not in {d["id"] for d in body["drops"]}


async def test_delete_cancels_active_holds(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert status == 204, body
    status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, body
    mine = [r for r in body["reservations"] if r["id"] == hold["id"]]
    assert len(mine) == 1 and mine[0]["status"] == "cancelled", body


async def test_reserve_on_a_deleted_drop_is_not_found(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert status == 204, body
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 404, "not_found")


async def test_delete_twice_is_not_found(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert status == 204, body
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert_error(status, body, 404, "not_found")


async def test_delete_of_a_drop_with_sales_is_refused(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert_error(status, body, 409, "drop_has_sales")
    assert (await get_drop(api, drop["id"]))["sold"] == 1


async def test_delete_by_customer_is_forbidden(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=token)
    assert_error(status, body, 403, "forbidden")
    await get_drop(api, drop["id"])


async def test_delete_without_token_is_unauthorized(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}")
    assert_error(status, body, 401, "unauthorized")
    await get_drop(api, drop["id"])


async def test_delete_unknown_drop_is_not_found(api: Api, admin_token: str) -> None:
    status, body, _ = await api.call("DELETE", "/api/drops/987654321", token=admin_token)
    assert_error(status, body, 404, "not_found")
