"""Paged lists over HTTP (docs/API.md, Additions: "Lists, lookups and paging").

Every list answers `{<items>: [...], nextCursor}`, newest first, `limit` items at most (default
50, 1-200); `nextCursor` passed back as `cursor` gives the next page and is null on the last.
A bad `limit` or `cursor` is a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from sneakerd.store import Store, open_store
from sneakerd.store.sql import SqlStore
from tests.api.conftest import Api
from tests.api.helpers import assert_drop, assert_validation, purchase_call, reserve

MANY = 2_100


def iso_in(seconds: float) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


async def read_pages(
    api: Api, path: str, name: str, token: str | None = None, **query: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following `nextCursor` until it is null."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        url = f"{path}?{urlencode(params)}" if params else path
        status, body, _ = await api.call("GET", url, token=token)
        assert status == 200, body
        assert set(body) == {name, "nextCursor"}, body
        assert len(body[name]) <= int(query.get("limit", 50))
        pages.append(body[name])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor, body
        assert len(pages) < 200, "paging does not end"


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Store]:
    """The server's own database, opened beside it (as an operator with SQL would)."""
    store = await open_store(api.server.db_url)
    try:
        yield store
    finally:
        await store.close()


async def insert_past_holds(db: Store, user_id: int, drop_id: int, count: int) -> list[int]:
    """`count` expired and cancelled reservations of one user, written straight to the tables:
    no hold stays active, so the drop's counts and its actor are untouched. Ten rows share each
    creation time, so the pages must break ties by id. Ids come from the store's allocator, so
    they never meet the server's."""
    assert isinstance(db, SqlStore)
    first = await db.allocate_ids("reservations", count)
    start = 1_795_510_800_000
    rows = [
        (
            first + i,
            drop_id,
            user_id,
            ("expired", "cancelled")[i % 2],
            db._time(start + i // 10 + 60_000),
            db._time(start + i // 10),
        )
        for i in range(count)
    ]
    async with db._transaction() as tx:
        for chunk in range(0, count, 500):
            part = rows[chunk : chunk + 500]
            marks = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(part))
            await tx.execute(
                "INSERT INTO reservations (id, drop_id, user_id, status, expires_at, created_at) "
                f"VALUES {marks}",
                [value for row in part for value in row],
            )
    return [first + i for i in range(count)]


async def test_a_user_with_thousands_of_reservations_reads_them_page_by_page(
    api: Api, admin_token: str, db: Store
) -> None:
    user, token = await api.register()
    drop = await api.drop(admin_token)
    ids = await insert_past_holds(db, user["id"], drop["id"], MANY)
    live = await reserve(api, token, drop["id"])  # the newest of all

    status, first, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, first
    assert len(first["reservations"]) == 50 and first["nextCursor"]

    pages = await read_pages(api, "/api/reservations/user", "reservations", token, limit=200)
    assert [len(p) for p in pages] == [200] * 10 + [101]
    listed = [r["id"] for page in pages for r in page]
    assert listed == [live["id"], *reversed(ids)]  # newest first; ties by id, descending
    assert pages[0][0] == live

    cancelled = await read_pages(
        api, "/api/reservations/user", "reservations", token, limit=150, status="cancelled"
    )
    got = [r for page in cancelled for r in page]
    assert {r["status"] for r in got} == {"cancelled"}
    assert [r["id"] for r in got] == [i for i in reversed(ids) if (i - ids[0]) % 2 == 1]
    active = await read_pages(api, "/api/reservations/user", "reservations", token, status="active")
    assert active == [[live]]


async def test_drops_are_listed_newest_first_and_searched_by_name_or_brand(
    api: Api, admin_token: str
) -> None:
    tag = api.unique("Qx")
    older = await api.drop(admin_token, name=f"{tag} Dunk Low", brand="Nike")
    middle = await api.drop(admin_token, name="Samba OG", brand=f"adidas {tag}")
    newer = await api.drop(admin_token, name=f"{tag.upper()} Upcoming", startsAt=iso_in(3 * 86_400))
    await api.drop(admin_token, name="Unrelated")
    pages = await read_pages(api, "/api/drops", "drops", q=tag.lower(), limit=2)
    assert [[d["id"] for d in p] for p in pages] == [[newer["id"], middle["id"]], [older["id"]]]
    for page in pages:
        for drop in page:
            assert_drop(drop)
    assert pages[1][0] == older

    status, body, _ = await api.call("GET", f"/api/drops?q={quote(tag)}&status=upcoming")
    assert status == 200, body
    assert [d["id"] for d in body["drops"]] == [newer["id"]] and body["nextCursor"] is None
    status, body, _ = await api.call("GET", f"/api/drops?q={quote(tag)}&status=live")
    assert [d["id"] for d in body["drops"]] == [middle["id"], older["id"]], body
    status, body, _ = await api.call("GET", f"/api/drops?q={quote(tag + '%')}")
    assert status == 200 and body == {"drops": [], "nextCursor": None}, body


async def test_the_shop_list_starts_with_the_newest_drop(api: Api, admin_token: str) -> None:
    made = await api.drop(admin_token)
    status, body, _ = await api.call("GET", "/api/drops?limit=1")
    assert status == 200, body
    assert body["drops"] == [made] and isinstance(body["nextCursor"], str)


async def test_purchase_lists_are_paged(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=5, perUserLimit=3)
    _, token = await api.register()
    bought = []
    for _ in range(3):
        hold = await reserve(api, token, drop["id"])
        status, body = await purchase_call(api, token, hold["id"])
        assert status == 201, body
        bought.append(body["purchase"])
    newest_first = sorted(bought, key=lambda p: (p["createdAt"], p["id"]), reverse=True)

    mine = await read_pages(api, "/api/purchases/user", "purchases", token, limit=2)
    assert [len(p) for p in mine] == [2, 1]
    assert [p for page in mine for p in page] == newest_first

    public = await read_pages(api, f"/api/purchases/drop/{drop['id']}", "purchases", limit=2)
    assert [len(p) for p in public] == [2, 1]
    assert [p["id"] for page in public for p in page] == [p["id"] for p in newest_first]
    assert {p["purchaser"] for page in public for p in page} == {
        (await api.call("GET", "/api/users/profile", token=token))[1]["user"]["username"]
    }


async def test_an_empty_list_has_no_next_cursor(api: Api) -> None:
    _, token = await api.register()
    for path, name in (
        ("/api/reservations/user", "reservations"),
        ("/api/purchases/user", "purchases"),
    ):
        status, body, _ = await api.call("GET", path, token=token)
        assert status == 200 and body == {name: [], "nextCursor": None}, body


LISTS = [
    ("/api/drops", True),
    ("/api/reservations/user", False),
    ("/api/purchases/user", False),
    ("/api/purchases/drop/{drop}", True),
]
BAD_LIMITS = ["0", "201", "-1", "abc", "1.5", "", "1e2", " 5", "99999999999999999999999"]
# "Zm9v" is "foo"; the others name an id 0, an unknown list and a negative time.
BAD_CURSORS = [
    "",
    "not a cursor",
    "!!!!",
    "Zm9v",
    "x" * 500,
    "ZC4xLjA",
    "eC4xLjE",
    "ZC4tMS41",
    "%00",
]


@pytest.fixture
async def list_paths(api: Api, admin_token: str) -> list[tuple[str, str | None]]:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    return [(path.format(drop=drop["id"]), None if public else token) for path, public in LISTS]


@pytest.mark.parametrize("value", BAD_LIMITS)
async def test_a_bad_limit_is_a_validation_error(
    api: Api, list_paths: list[tuple[str, str | None]], value: str
) -> None:
    for path, token in list_paths:
        status, body, _ = await api.call("GET", f"{path}?limit={quote(value)}", token=token)
        assert_validation(status, body, "limit")


@pytest.mark.parametrize("value", BAD_CURSORS)
async def test_a_bad_cursor_is_a_validation_error(
    api: Api, list_paths: list[tuple[str, str | None]], value: str
) -> None:
    for path, token in list_paths:
        status, body, _ = await api.call("GET", f"{path}?cursor={quote(value)}", token=token)
        assert_validation(status, body, "cursor")


async def test_a_cursor_of_one_list_is_refused_by_another(api: Api, admin_token: str) -> None:
    await api.drop(admin_token)
    await api.drop(admin_token)
    status, body, _ = await api.call("GET", "/api/drops?limit=1")
    assert status == 200 and body["nextCursor"], body
    _, token = await api.register()
    status, body, _ = await api.call(
        "GET", f"/api/reservations/user?cursor={quote(body['nextCursor'])}", token=token
    )
    assert_validation(status, body, "cursor")


@pytest.mark.parametrize("value", ["bogus", "ACTIVE", "", "live"])
async def test_reservations_refuse_an_unknown_status(api: Api, value: str) -> None:
    _, token = await api.register()
    status, body, _ = await api.call(
        "GET", f"/api/reservations/user?status={quote(value)}", token=token
    )
    assert_validation(status, body, "status")


async def test_a_too_long_search_is_a_validation_error(api: Api) -> None:
    status, body, _ = await api.call("GET", f"/api/drops?q={'a' * 101}")
    assert_validation(status, body, "q")


async def _first_cursor(api: Api, path: str, token: str | None = None) -> str:
    joiner = "&" if "?" in path else "?"
    status, body, _ = await api.call("GET", f"{path}{joiner}limit=1", token=token)
    assert status == 200 and body["nextCursor"], body
    return str(body["nextCursor"])


async def test_a_cursor_of_one_users_list_is_refused_in_anothers(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, perUserLimit=2)
    _, alice = await api.register()
    _, bob = await api.register()
    for _ in range(2):
        await reserve(api, alice, drop["id"])
    await reserve(api, bob, drop["id"])
    cursor = await _first_cursor(api, "/api/reservations/user", alice)
    status, body, _ = await api.call(
        "GET", f"/api/reservations/user?cursor={quote(cursor)}", token=bob
    )
    assert_validation(status, body, "cursor")
    status, body, _ = await api.call(
        "GET", f"/api/reservations/user?cursor={quote(cursor)}", token=alice
    )
    assert status == 200 and len(body["reservations"]) == 1, body


async def test_a_cursor_of_one_drops_list_is_refused_by_anothers(
    api: Api, admin_token: str
) -> None:
    first = await api.drop(admin_token, perUserLimit=2)
    second = await api.drop(admin_token, perUserLimit=2)
    _, token = await api.register()
    for drop in (first, second, first):
        held = await reserve(api, token, drop["id"])
        status, body = await purchase_call(api, token, held["id"])
        assert status == 201, body
    cursor = await _first_cursor(api, f"/api/purchases/drop/{first['id']}")
    status, body, _ = await api.call(
        "GET", f"/api/purchases/drop/{second['id']}?cursor={quote(cursor)}"
    )
    assert_validation(status, body, "cursor")
    status, body, _ = await api.call(
        "GET", f"/api/purchases/drop/{first['id']}?cursor={quote(cursor)}"
    )
    assert status == 200 and len(body["purchases"]) == 1, body


async def test_a_cursor_of_a_filtered_list_is_refused_under_another_filter(
    api: Api, admin_token: str
) -> None:
    for _ in range(2):
        await api.drop(admin_token)
    cursor = await _first_cursor(api, "/api/drops?status=live")
    status, body, _ = await api.call("GET", f"/api/drops?status=upcoming&cursor={quote(cursor)}")
    assert_validation(status, body, "cursor")
    status, body, _ = await api.call("GET", f"/api/drops?cursor={quote(cursor)}")
    assert_validation(status, body, "cursor")
    status, body, _ = await api.call("GET", f"/api/drops?status=live&cursor={quote(cursor)}")
    assert status == 200 and body["drops"], body
