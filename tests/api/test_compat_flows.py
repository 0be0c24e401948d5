"""The original front-end's flows against /compat, on both stores: accounts, the drop list and
a drop's page, holding, cancelling and buying, the shopper's lists, and the admin's drop edits,
each answer in the original's envelope and shapes (snake_case, prices as numbers, times with
`Z`), with CORS for the front-end's origin."""

from __future__ import annotations

from typing import Any

from tests.api.compat_helpers import ISO_Z, PASSWORD, Compat, field_errors, ok, refused
from tests.api.conftest import Api

USER_KEYS = {"id", "username", "email", "role", "created_at", "createdAt"}
DROP_KEYS = {
    "id", "name", "description", "price", "stock", "initial_stock", "image_url",
    "drop_start_time", "created_at", "updated_at", "purchases",
}  # fmt: skip
RESERVATION_KEYS = {
    "id", "user_id", "drop_id", "status", "expires_at", "created_at", "is_active",
    "is_expired", "remaining_seconds", "drop",
}  # fmt: skip
PURCHASE_KEYS = {"id", "user_id", "drop_id", "reservation_id", "price", "purchased_at"}


def compat(compat_api: Api) -> Compat:
    return Compat(compat_api)


def assert_drop(drop: dict[str, Any]) -> None:
    assert set(drop) >= DROP_KEYS, drop
    assert isinstance(drop["price"], float | int) and not isinstance(drop["price"], bool)
    for key in ("drop_start_time", "created_at", "updated_at"):
        assert ISO_Z.match(drop[key]), (key, drop)
    assert isinstance(drop["purchases"], list)


async def test_register_login_and_the_profile(compat_api: Api) -> None:
    c = compat(compat_api)
    name = c.api.unique()
    answer = await c.call(
        "POST",
        "/users/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    body = ok(answer, 201)
    assert body["message"] == "User registered successfully"
    user, token = body["data"]["user"], body["data"]["token"]
    assert set(user) == USER_KEYS and user["username"] == name, user
    assert isinstance(user["id"], int) and ISO_Z.match(user["created_at"])
    assert answer[2]["Cache-Control"] == "no-store"

    logged = ok(
        await c.call(
            "POST", "/users/login", json={"email": f"{name}@example.com", "password": PASSWORD}
        )
    )
    assert logged["data"]["user"] == user and logged["data"]["token"]

    me = ok(await c.call("GET", "/users/profile", token=token))
    assert me["data"]["user"] == user

    renamed = ok(await c.call("PUT", "/users/profile", token=token, json={"username": name + "_x"}))
    assert renamed["data"]["user"]["username"] == name + "_x"
    changed = await c.call(
        "PUT",
        "/users/profile",
        token=token,
        json={"password": "a-new-password", "current_password": PASSWORD},
    )
    ok(changed)
    again = {"email": f"{name}@example.com", "password": "a-new-password"}
    ok(await c.call("POST", "/users/login", json=again))
    refused(
        await c.call(
            "POST", "/users/login", json={"email": f"{name}@example.com", "password": PASSWORD}
        ),
        401,
        "Invalid email or password",
    )
    # A new password needs the current one.
    answer = await c.call("PUT", "/users/profile", token=token, json={"password": "x" * 12})
    refused(answer, 400)
    assert "current_password" in field_errors(answer[1])


async def test_the_drop_list_is_numbered_newest_first_and_searched(compat_api: Api) -> None:
    c = compat(compat_api)
    admin = await c.admin()
    tag = c.api.unique("tag")
    made = [await c.drop(admin, name=f"{tag} pair {i}") for i in range(12)]
    newest_first = [d["id"] for d in reversed(made)]

    pages = [
        ok(await c.call("GET", f"/drops?search={tag}&limit=5&page={page}")) for page in (1, 2, 3)
    ]
    assert [p["count"] for p in pages] == [5, 5, 2]
    assert {(p["total"], p["totalPages"]) for p in pages} == {(12, 3)}
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert [d["id"] for p in pages for d in p["data"]["drops"]] == newest_first
    for drop in pages[0]["data"]["drops"]:
        assert_drop(drop)

    first = ok(await c.call("GET", f"/drops?search={tag.upper()}"))  # the original's 10
    assert (first["count"], first["total"], first["page"], first["totalPages"]) == (10, 12, 1, 2)
    beyond = ok(await c.call("GET", f"/drops?search={tag}&page=9"))
    assert beyond["count"] == 0 and beyond["data"]["drops"] == [] and beyond["total"] == 12
    nothing = ok(await c.call("GET", f"/drops?search={tag}-none"))
    assert (nothing["total"], nothing["totalPages"]) == (0, 0)


async def test_a_drops_page_shows_its_latest_three_purchases_newest_first_and_its_stats(
    compat_api: Api,
) -> None:
    c = compat(compat_api)
    admin = await c.admin()
    drop = await c.drop(admin, stock=10, price=120)
    buyers = []
    for _ in range(4):
        user, token = await c.register()
        hold = await c.reserve(token, drop["id"])
        bought = await c.buy(token, hold["reservation"]["id"])
        buyers.append((user, bought["purchase"]))
    _, holder = await c.register()
    await c.reserve(holder, drop["id"])

    shown = await c.get_drop(drop["id"])
    assert_drop(shown)
    latest = shown["purchases"]
    assert [p["id"] for p in latest] == [p["id"] for _, p in reversed(buyers)][:3]
    for entry, (user, purchase) in zip(latest, list(reversed(buyers))[:3], strict=True):
        assert entry == {
            "id": purchase["id"],
            "user_id": user["id"],
            "drop_id": drop["id"],
            "price": 120,
            "purchased_at": purchase["purchased_at"],
            "user": {"id": user["id"], "username": user["username"]},
        }
    assert (shown["stock"], shown["initial_stock"]) == (5, 10)

    stats = ok(await c.call("GET", f"/drops/{drop['id']}/stats"))["data"]["stats"]
    assert stats == {
        "id": drop["id"],
        "name": drop["name"],
        "total_stock": 10,
        "remaining_stock": 5,
        "sold": 5,  # the hold counts, as the original counted
        "total_purchases": 4,
        "stock_percentage": 50,
        "is_available": True,
        "has_started": True,
    }
    listed = ok(await c.call("GET", f"/drops?search={drop['name']}"))["data"]["drops"]
    assert [d["purchases"] for d in listed] == [latest]


async def test_hold_read_cancel_hold_again_buy_and_my_reservations_by_status(
    compat_api: Api,
) -> None:
    c = compat(compat_api)
    admin = await c.admin()
    drop = await c.drop(admin, stock=3, image_url="https://img.example.com/a.png")
    _, token = await c.register()

    made = await c.reserve(token, drop["id"])
    hold = made["reservation"]
    assert set(hold) == {"id", "drop_id", "status", "expires_at", "remaining_seconds"}
    assert (hold["drop_id"], hold["status"]) == (drop["id"], "active")
    assert 55 <= hold["remaining_seconds"] <= 60 and ISO_Z.match(hold["expires_at"])
    assert made["drop"] == {"id": drop["id"], "name": drop["name"], "stock": 2}

    read = ok(await c.call("GET", f"/reservations/{hold['id']}", token=token))
    one = read["data"]["reservation"]
    assert set(one) == RESERVATION_KEYS
    assert (one["is_active"], one["is_expired"], one["status"]) == (True, False, "active")
    assert 1 <= one["remaining_seconds"] <= 60
    assert one["drop"] == {
        "id": drop["id"],
        "name": drop["name"],
        "price": 199.99,
        "image_url": "https://img.example.com/a.png",
    }

    cancelled = ok(await c.call("DELETE", f"/reservations/{hold['id']}", token=token))
    assert cancelled == {"success": True, "message": "Reservation cancelled successfully"}
    after = ok(await c.call("GET", f"/reservations/{hold['id']}", token=token))
    gone = after["data"]["reservation"]
    # A cancelled hold reads `expired`: the original had no other word for it.
    assert (gone["status"], gone["is_active"], gone["is_expired"]) == ("expired", False, True)
    assert gone["remaining_seconds"] == 0
    assert (await c.counts(drop["id"])) == (3, 0, 0)

    second = (await c.reserve(token, drop["id"]))["reservation"]
    await c.buy(token, second["id"])
    assert (await c.counts(drop["id"])) == (2, 0, 1)

    mine = ok(await c.call("GET", "/reservations/user", token=token))
    assert mine["count"] == 2 and [r["id"] for r in mine["data"]["reservations"]] == [
        second["id"],
        hold["id"],
    ]
    by_status = {}
    for status in ("active", "expired", "completed"):
        answer = ok(await c.call("GET", f"/reservations/user?status={status}", token=token))
        by_status[status] = [r["id"] for r in answer["data"]["reservations"]]
        assert answer["count"] == len(by_status[status])
    assert by_status == {"active": [], "expired": [hold["id"]], "completed": [second["id"]]}
    done = ok(await c.call("GET", f"/reservations/{second['id']}", token=token))
    completed = done["data"]["reservation"]
    assert (completed["status"], completed["is_active"], completed["is_expired"]) == (
        "completed",
        False,
        False,
    )


async def test_buy_my_purchases_one_purchase_and_a_drops_purchases(compat_api: Api) -> None:
    c = compat(compat_api)
    admin = await c.admin()
    drop = await c.drop(admin, stock=5, price="89.50", per_user_limit=3)
    user, token = await c.register()
    bought = []
    for _ in range(3):
        hold = (await c.reserve(token, drop["id"]))["reservation"]
        made = await c.buy(token, hold["id"])
        purchase = made["purchase"]
        assert set(purchase) == PURCHASE_KEYS
        assert (purchase["reservation_id"], purchase["user_id"], purchase["price"]) == (
            hold["id"],
            user["id"],
            89.5,
        )
        assert made["drop"]["id"] == drop["id"]
        bought.append(purchase)
    assert made["drop"]["stock"] == 2

    # Buying the same hold again answers the same purchase (200), and sells nothing more.
    again = ok(
        await c.call(
            "POST", "/purchases", token=token, json={"reservationId": bought[-1]["reservation_id"]}
        )
    )
    assert again["data"]["purchase"] == bought[-1]
    assert (await c.counts(drop["id"])) == (2, 0, 3)

    page = ok(await c.call("GET", "/purchases/user?limit=2", token=token))
    assert (page["count"], page["total"], page["page"], page["totalPages"]) == (2, 3, 1, 2)
    listed = page["data"]["purchases"]
    assert [p["id"] for p in listed] == [bought[2]["id"], bought[1]["id"]]
    assert listed[0]["drop"] == {"id": drop["id"], "name": drop["name"], "image_url": None}
    rest = ok(await c.call("GET", "/purchases/user?limit=2&page=2", token=token))
    assert [p["id"] for p in rest["data"]["purchases"]] == [bought[0]["id"]]

    one = ok(await c.call("GET", f"/purchases/{bought[0]['id']}", token=token))
    assert one["data"]["purchase"]["id"] == bought[0]["id"]
    _, stranger = await c.register()
    refused(await c.call("GET", f"/purchases/{bought[0]['id']}", token=stranger), 404)

    public = ok(await c.call("GET", f"/purchases/drop/{drop['id']}?limit=2"))
    entries = public["data"]["purchases"]
    assert [e["id"] for e in entries] == [bought[2]["id"], bought[1]["id"]]
    assert entries[0] == {
        "id": bought[2]["id"],
        "price": 89.5,
        "purchased_at": bought[2]["purchased_at"],
        "user": {"id": user["id"], "username": user["username"]},
    }


async def test_the_admin_creates_changes_and_deletes_a_drop_in_snake_case(
    compat_api: Api,
) -> None:
    c = compat(compat_api)
    admin = await c.admin()
    made = ok(
        await c.call(
            "POST",
            "/drops",
            token=admin,
            json={
                "name": "Dunk Low 'Panda'",
                "description": "Black and white.",
                "price": 149.5,
                "stock": 20,
                "initial_stock": 20,
                "image_url": "https://img.example.com/panda.png",
                "drop_start_time": "2026-01-01T10:00:00Z",
                "id": 999,  # a field the front-end's form may carry: ignored
            },
        ),
        201,
    )
    assert made["message"] == "Drop created successfully"
    drop = made["data"]["drop"]
    assert_drop(drop)
    assert (drop["name"], drop["price"], drop["stock"], drop["initial_stock"]) == (
        "Dunk Low 'Panda'",
        149.5,
        20,
        20,
    )
    assert drop["drop_start_time"] == "2026-01-01T10:00:00.000Z" and drop["purchases"] == []
    assert drop["image_url"] == "https://img.example.com/panda.png" and drop["id"] != 999

    _, token = await c.register()
    await c.reserve(token, drop["id"])
    # `stock` on an edit is what is available now: the held unit stays held.
    changed = ok(
        await c.call(
            "PUT",
            f"/drops/{drop['id']}",
            token=admin,
            json={"price": "155.00", "stock": 30, "image_url": "", "description": "New."},
        )
    )
    after = changed["data"]["drop"]
    assert (after["price"], after["stock"], after["initial_stock"], after["reserved"]) == (
        155,
        30,
        31,
        1,
    )
    assert (after["image_url"], after["description"]) == (None, "New.")
    restocked = ok(
        await c.call("PUT", f"/drops/{drop['id']}", token=admin, json={"initial_stock": 5})
    )
    assert (restocked["data"]["drop"]["stock"], restocked["data"]["drop"]["initial_stock"]) == (
        4,
        5,
    )
    assert (await c.get_drop(drop["id"]))["price"] == 155

    deleted = ok(await c.call("DELETE", f"/drops/{drop['id']}", token=admin))
    assert deleted == {"success": True, "message": "Drop deleted successfully"}
    refused(await c.call("GET", f"/drops/{drop['id']}"), 404, "Drop not found")


async def test_the_profile_form_may_send_the_accounts_own_email_but_not_another(
    compat_api: Api,
) -> None:
    c = compat(compat_api)
    user, token = await c.register()
    same = {"username": user["username"] + "_y", "email": user["email"].upper()}
    renamed = ok(await c.call("PUT", "/users/profile", token=token, json=same))
    assert renamed["data"]["user"]["username"] == user["username"] + "_y"
    other = {"username": user["username"] + "_z", "email": "someone-else@example.com"}
    answer = await c.call("PUT", "/users/profile", token=token, json=other)
    refused(answer, 400)
    assert "email" in field_errors(answer[1])
    me = ok(await c.call("GET", "/users/profile", token=token))["data"]["user"]
    assert (me["username"], me["email"]) == (user["username"] + "_y", user["email"])
