"""The operators' API on a real server, on both stores: the buyer list (JSON pages and CSV)
matches the database, the audit log records every admin write with before and after, and a
paused drop refuses reserve and purchase with `drop_paused` while its holds keep their
deadlines. The CLI's writes (`drops create`, `drops pause`, `drops unpause`) are logged as
`cli`, and `purchases export` and `audit` read what the API reads."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from sneakerd.store import open_store
from tests.api.conftest import Api
from tests.api.helpers import (
    assert_error,
    assert_validation,
    get_drop,
    purchase_call,
    reserve,
    reserve_call,
)
from tests.serverproc import Server
from tests.store.helpers import sql

CSV_HEADER = ["purchaseId", "reservationId", "price", "createdAt", "userId", "username", "email"]


async def buy(api: Api, drop_id: int, username: str | None = None, email: str | None = None) -> Any:
    """A new customer who reserves and buys one unit; returns (user, purchase)."""
    username = username or api.unique()
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={
            "username": username,
            "email": email or f"{username}@example.com",
            "password": "hunter2hunter2",
        },
    )
    assert status == 201, body
    user, token = body["user"], body["token"]
    hold = await reserve(api, token, drop_id)
    status, bought = await purchase_call(api, token, hold["id"])
    assert status == 201, bought
    return user, bought["purchase"]


async def database_buyers(server: Server, drop_id: int) -> set[tuple[Any, ...]]:
    store = await open_store(server.db_url)
    try:
        rows = await sql(
            store,
            "SELECT p.id, p.reservation_id, p.price, u.id, u.username, u.email "
            "FROM purchases p JOIN users u ON u.id = p.user_id WHERE p.drop_id = %s",
            (drop_id,),
        )
    finally:
        await store.close()
    return {(int(r[0]), int(r[1]), f"{float(r[2]):.2f}", int(r[3]), r[4], r[5]) for r in rows}


def as_tuple(entry: dict[str, Any]) -> tuple[Any, ...]:
    user = entry["user"]
    return (
        entry["id"],
        entry["reservationId"],
        entry["price"],
        user["id"],
        user["username"],
        user["email"],
    )


async def every_buyer(api: Api, token: str, drop_id: int, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, body, _ = await api.call(
            "GET", f"/api/admin/drops/{drop_id}/purchases{query}", token=token
        )
        assert status == 200, body
        assert set(body) == {"purchases", "nextCursor"}
        out += body["purchases"]
        cursor = body["nextCursor"]
        if cursor is None:
            return out


async def test_the_buyer_list_and_its_csv_match_the_database(
    api: Api, admin_token: str, server: Server
) -> None:
    drop = await api.drop(admin_token, initialStock=5)
    other = await api.drop(admin_token, initialStock=5)
    plain = [await buy(api, drop["id"]) for _ in range(3)]
    # A buyer whose own text a spreadsheet would run as a formula.
    evil_name = "-" + api.unique("x")
    evil = await buy(api, drop["id"], evil_name, f"=1+2{api.unique()}@example.com")
    await buy(api, other["id"])

    listed = await every_buyer(api, admin_token, drop["id"], limit=2)
    assert len(listed) == 4
    assert {as_tuple(e) for e in listed} == await database_buyers(server, drop["id"])
    assert [e["createdAt"] for e in listed] == sorted(
        (e["createdAt"] for e in listed), reverse=True
    )
    bought = {p["id"]: p for _, p in [*plain, evil]}
    for entry in listed:
        assert entry["createdAt"] == bought[entry["id"]]["createdAt"]
        assert entry["price"] == "199.99"

    async with api.http.get(
        api.server.url + f"/api/admin/drops/{drop['id']}/purchases?limit=1",
        headers={"Authorization": f"Bearer {admin_token}", "Accept": "text/csv"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in resp.headers["Content-Disposition"]
        text = await resp.text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 5, "every row, whatever the limit"
    expected = [
        [
            str(e["id"]),
            str(e["reservationId"]),
            e["price"],
            e["createdAt"],
            str(e["user"]["id"]),
            e["user"]["username"],
            e["user"]["email"],
        ]
        for e in listed
    ]
    defused = [[("'" + c if c[:1] in "=+-@" else c) for c in row] for row in expected]
    assert rows[1:] == defused
    evil_row = next(r for r in rows if r[0] == str(evil[1]["id"]))
    assert evil_row[5] == "'" + evil_name and evil_row[6].startswith("'=1+2")


async def test_operators_lists_are_for_admins_only(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, customer = await api.register()
    for path in (f"/api/admin/drops/{drop['id']}/purchases", "/api/admin/audit"):
        status, body, _ = await api.call("GET", path, token=customer)
        assert_error(status, body, 403, "forbidden")
        status, body, _ = await api.call("GET", path)
        assert_error(status, body, 401, "unauthorized")
        status, body, _ = await api.call(
            "GET", path, token=customer, headers={"Accept": "text/csv"}
        )
        assert_error(status, body, 403, "forbidden")
    status, body, _ = await api.call(
        "GET", "/api/admin/drops/987654321/purchases", token=admin_token
    )
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call(
        "GET",
        "/api/admin/drops/987654321/purchases",
        token=admin_token,
        headers={"Accept": "text/csv"},
    )
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call(
        "GET", f"/api/admin/drops/{drop['id']}/purchases?cursor=nope", token=admin_token
    )
    assert_validation(status, body, "cursor")
    status, body, _ = await api.call("GET", "/api/admin/audit?dropId=abc", token=admin_token)
    assert_validation(status, body, "dropId")
    status, body, _ = await api.call("GET", "/api/admin/audit?limit=0", token=admin_token)
    assert_validation(status, body, "limit")


async def audit_of(api: Api, token: str, drop_id: int) -> list[dict[str, Any]]:
    status, body, _ = await api.call("GET", f"/api/admin/audit?dropId={drop_id}", token=token)
    assert status == 200, body
    assert set(body) == {"entries", "nextCursor"}
    return list(reversed(body["entries"]))  # oldest first


def admin_id(token: str) -> int:
    import base64

    claims = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"])


async def test_every_admin_write_is_in_the_audit_log_with_before_and_after(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=4)
    path = f"/api/drops/{drop['id']}"
    for body in ({"paused": True}, {"paused": False}, {"initialStock": 9}, {"name": "Renamed"}):
        status, answer, _ = await api.call("PUT", path, token=admin_token, json=body)
        assert status == 200, answer
    status, _, _ = await api.call("DELETE", path, token=admin_token)
    assert status == 204
    entries = await audit_of(api, admin_token, drop["id"])
    actor = f"user:{admin_id(admin_token)}"
    assert [(e["action"], e["actor"], e["dropId"]) for e in entries] == [
        (action, actor, drop["id"])
        for action in ("create", "pause", "unpause", "restock", "update", "delete")
    ]
    create, pause, unpause, restock, update, delete = entries
    assert create["before"] is None and create["after"]["initialStock"] == 4
    assert (pause["before"]["paused"], pause["after"]["paused"]) == (False, True)
    assert (unpause["before"]["paused"], unpause["after"]["paused"]) == (True, False)
    assert (restock["before"]["initialStock"], restock["after"]["initialStock"]) == (4, 9)
    assert (restock["before"]["stock"], restock["after"]["stock"]) == (4, 9)
    assert (update["before"]["name"], update["after"]["name"]) == (drop["name"], "Renamed")
    assert delete["after"] is None and delete["before"]["name"] == "Renamed"
    assert all(e["at"].endswith("Z") for e in entries)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids)

    # A refused write leaves nothing; and the unfiltered log pages through the same entries.
    other = await api.drop(admin_token, initialStock=1)
    _, token = await api.register()
    await reserve(api, token, other["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{other['id']}", token=admin_token, json={"initialStock": 0}
    )
    assert_error(status, body, 409, "stock_below_committed")
    assert [e["action"] for e in await audit_of(api, admin_token, other["id"])] == ["create"]
    status, page, _ = await api.call("GET", "/api/admin/audit?limit=1", token=admin_token)
    assert status == 200 and len(page["entries"]) == 1 and page["nextCursor"]
    status, rest, _ = await api.call(
        "GET", f"/api/admin/audit?limit=200&cursor={page['nextCursor']}", token=admin_token
    )
    assert status == 200
    assert page["entries"][0]["id"] not in {e["id"] for e in rest["entries"]}


async def test_an_edit_that_changes_nothing_is_answered_and_writes_nothing(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=4)
    path = f"/api/drops/{drop['id']}"
    for body in ({}, {"name": drop["name"]}, {"paused": False}, {"id": 3, "stock": 9}):
        status, answer, _ = await api.call("PUT", path, token=admin_token, json=body)
        assert status == 200, answer
        assert answer["drop"]["version"] == drop["version"], (body, answer)
    assert [e["action"] for e in await audit_of(api, admin_token, drop["id"])] == ["create"]


async def test_webhook_writes_are_in_the_audit_log_without_their_secret(
    api: Api, admin_token: str
) -> None:
    """A webhook is not part of a drop (`dropId` null), but adding or removing one is an admin
    write like any other: it is in the log, with the webhook before and after, never its
    secret."""
    status, made, _ = await api.call(
        "POST", "/api/admin/webhooks", token=admin_token, json={"url": "https://shop.example/a"}
    )
    assert status == 201, made
    hook = made["webhook"]
    status, _, _ = await api.call("DELETE", f"/api/admin/webhooks/{hook['id']}", token=admin_token)
    assert status == 204
    status, page, _ = await api.call("GET", "/api/admin/audit?limit=200", token=admin_token)
    assert status == 200, page
    actor = f"user:{admin_id(admin_token)}"
    mine = [e for e in page["entries"] if e["action"].endswith("_webhook")]
    assert [(e["action"], e["actor"]) for e in mine] == [
        ("remove_webhook", actor),
        ("add_webhook", actor),
    ]  # newest first
    removed, added = mine
    assert added["dropId"] is None and removed["dropId"] is None
    assert added["before"] is None and added["after"]["url"] == "https://shop.example/a"
    assert added["after"]["id"] == hook["id"] and removed["before"] == added["after"]
    assert removed["after"] is None
    assert made["secret"] not in str(page)
    # All events, as the webhook itself shows them (it logged `events: []`).
    assert added["after"]["events"] == hook["events"] and len(hook["events"]) == 6
    assert added["after"]["allEvents"] is True and hook["allEvents"] is True


async def test_a_paused_drop_refuses_reserve_and_purchase_and_keeps_the_hold(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=3)
    assert drop["paused"] is False
    _, ann = await api.register()
    _, bob = await api.register()
    hold = await reserve(api, ann, drop["id"])
    path = f"/api/drops/{drop['id']}"
    status, body, _ = await api.call("PUT", path, token=admin_token, json={"paused": True})
    assert status == 200 and body["drop"]["paused"] is True
    assert (await get_drop(api, drop["id"]))["paused"] is True
    status, listed, _ = await api.call("GET", f"/api/drops?q={drop['name']}")
    assert status == 200 and listed["drops"][0]["paused"] is True

    for _ in range(2):  # the early refusal and the actor's own agree
        status, body = await reserve_call(api, bob, drop["id"])
        assert_error(status, body, 409, "drop_paused")
    status, body = await purchase_call(api, ann, hold["id"])
    assert_error(status, body, 409, "drop_paused")
    status, body, _ = await api.call("GET", f"/api/reservations/{hold['id']}", token=ann)
    assert status == 200 and body["reservation"] == hold, "the hold is untouched"
    current = await get_drop(api, drop["id"])
    assert (current["stock"], current["reserved"], current["sold"]) == (2, 1, 0)

    for bad in ("yes", 1, None):
        status, body, _ = await api.call("PUT", path, token=admin_token, json={"paused": bad})
        assert_validation(status, body, "paused")
    _, customer = await api.register()
    status, body, _ = await api.call("PUT", path, token=customer, json={"paused": False})
    assert_error(status, body, 403, "forbidden")

    status, body, _ = await api.call("PUT", path, token=admin_token, json={"paused": False})
    assert status == 200 and body["drop"]["paused"] is False
    status, bought = await purchase_call(api, ann, hold["id"])
    assert status == 201, bought
    assert (await reserve(api, bob, drop["id"]))["status"] == "active"


async def test_holds_still_expire_while_the_drop_is_paused(start_api: Callable[..., Api]) -> None:
    api = start_api(RESERVATION_DURATION="1000")
    admin = await api.admin()
    drop = await api.drop(admin, initialStock=1)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, _, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin, json={"paused": True}
    )
    assert status == 200
    deadline = time.monotonic() + 5
    while True:
        status, body, _ = await api.call("GET", f"/api/reservations/{hold['id']}", token=token)
        assert status == 200
        if body["reservation"]["status"] == "expired":
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    assert body["reservation"]["expiresAt"] == hold["expiresAt"], "the deadline did not move"
    current = await get_drop(api, drop["id"])
    assert current["paused"] is True
    assert (current["stock"], current["reserved"], current["sold"]) == (1, 0, 0)


def run_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sneakerd", *args, "--db", server.db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.cwd,
        env=server.env,
    )


async def test_cli_writes_are_logged_as_cli_and_its_reads_match_the_api(
    api: Api, admin_token: str, server: Server
) -> None:
    name = api.unique("clidrop")
    done = run_cli(
        server, "drops", "create", "--name", name, "--price", "50", "--stock", "3", "--json"
    )
    assert done.returncode == 0, done.stderr
    drop_id = json.loads(done.stdout)["drop"]["id"]
    await buy(api, drop_id)
    await buy(api, drop_id, "-" + api.unique("c"))

    done = run_cli(server, "drops", "pause", str(drop_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"drop {drop_id} paused"
    assert (await get_drop(api, drop_id))["paused"] is True
    listed = run_cli(server, "drops", "list")
    assert re.search(rf"^{drop_id} +{name} +live \(paused\) ", listed.stdout, re.M), listed.stdout
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop_id)
    assert_error(status, body, 409, "drop_paused")  # the server's actor saw the new version
    done = run_cli(server, "drops", "unpause", str(drop_id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["drop"]["paused"] is False
    # The server's actor reads a paused drop again (at most once a second) before refusing.
    deadline = time.monotonic() + 3
    while (granted := await reserve_call(api, token, drop_id))[0] != 201:
        assert_error(*granted, 409, "drop_paused")
        assert time.monotonic() < deadline, "the unpause never reached the server"
        await asyncio.sleep(0.1)

    entries = await audit_of(api, admin_token, drop_id)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", "cli"),
        ("pause", "cli"),
        ("unpause", "cli"),
    ]
    done = run_cli(server, "audit", "--drop", str(drop_id), "--json")
    assert done.returncode == 0, done.stderr
    assert list(reversed(json.loads(done.stdout)["entries"])) == entries
    done = run_cli(server, "audit", "--drop", str(drop_id))
    assert done.returncode == 0 and "paused: False -> True" in done.stdout, done.stdout

    done = run_cli(server, "purchases", "export", "--drop", str(drop_id), "--csv")
    assert done.returncode == 0, done.stderr
    async with api.http.get(
        api.server.url + f"/api/admin/drops/{drop_id}/purchases",
        headers={"Authorization": f"Bearer {admin_token}", "Accept": "text/csv"},
    ) as resp:
        assert resp.status == 200
        assert done.stdout.replace("\r\n", "\n") == (await resp.text()).replace("\r\n", "\n")
    assert "'-" in done.stdout
    done = run_cli(server, "purchases", "export", "--drop", str(drop_id), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["purchases"] == await every_buyer(api, admin_token, drop_id, 50)

    for args in (("drops", "pause", "987654321"), ("purchases", "export", "--drop", "987654321")):
        done = run_cli(server, *args)
        assert done.returncode == 1 and "no drop 987654321" in done.stderr, done.stderr
    done = run_cli(server, "purchases", "export", "--drop", str(drop_id), "--csv", "--json")
    assert done.returncode == 1, done.stderr  # under --json the error is JSON on stdout
    assert "not both" in json.loads(done.stdout)["error"]["message"]


async def test_the_openapi_document_shows_paused_and_the_admin_lists(api: Api) -> None:
    async with api.http.get(api.server.url + "/api/docs/swagger.json") as resp:
        spec = await resp.json(content_type=None)
    text = json.dumps(spec)
    assert "/api/admin/drops/{id}/purchases" in text and "/api/admin/audit" in text
    drop_schemas = [
        schema
        for name, schema in (spec.get("definitions") or spec["components"]["schemas"]).items()
        if name.startswith("Drop") and "holdsPerUser" in schema.get("properties", {})
    ]
    assert drop_schemas and all("paused" in s["properties"] for s in drop_schemas)
    assert "drop_paused" in text


async def test_the_compat_mounts_admin_writes_are_in_the_audit_log(
    api: Api, admin_token: str
) -> None:
    status, made, _ = await api.call(
        "POST",
        "/compat/api/drops",
        token=admin_token,
        json={"name": api.unique("compat"), "price": 120, "stock": 4, "initial_stock": 4},
    )
    assert status == 201, made
    drop_id = made["data"]["drop"]["id"]
    status, body, _ = await api.call(
        "PUT", f"/compat/api/drops/{drop_id}", token=admin_token, json={"initial_stock": 6}
    )
    assert status == 200, body
    status, body, _ = await api.call("DELETE", f"/compat/api/drops/{drop_id}", token=admin_token)
    assert status == 200, body
    entries = await audit_of(api, admin_token, drop_id)
    actor = f"user:{admin_id(admin_token)}"
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", actor),
        ("restock", actor),
        ("delete", actor),
    ]
    assert (entries[1]["before"]["initialStock"], entries[1]["after"]["initialStock"]) == (4, 6)


async def _frame(ws: Any, kind: str, within: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} frame within {within} s"
        message = await asyncio.wait_for(ws.receive_json(), left)
        if message["type"] == kind:
            return dict(message)


async def test_cli_pause_and_unpause_go_through_the_running_servers_actor(
    api: Api, admin_token: str, server: Server
) -> None:
    """With a server running, a CLI pause is made by the drop's actor: its watchers hear of it
    at once, with no request in between, and after an unpause the very next reserve is
    granted (the actor never refuses from a paused memory). Logged as `cli`, as ever."""
    drop = await api.drop(admin_token, initialStock=5)
    drop_id = drop["id"]
    _, token = await api.register()
    async with api.http.ws_connect(api.server.url + f"/api/drops/{drop_id}/ws") as ws:
        assert (await _frame(ws, "snapshot"))["drop"]["paused"] is False
        done = await asyncio.to_thread(
            run_cli, server, "drops", "pause", str(drop_id), "--server", server.url, "--json"
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["drop"]["paused"] is True
        assert (await _frame(ws, "dropUpdated"))["drop"]["paused"] is True
        assert_error(*await reserve_call(api, token, drop_id), 409, "drop_paused")
        done = await asyncio.to_thread(
            run_cli, server, "drops", "unpause", str(drop_id), "--server", server.url
        )
        assert done.returncode == 0 and done.stdout.strip() == f"drop {drop_id} unpaused"
        assert (await _frame(ws, "dropUpdated"))["drop"]["paused"] is False
        status, body = await reserve_call(api, token, drop_id)
        assert status == 201, body
    entries = await audit_of(api, admin_token, drop_id)
    assert [(e["action"], e["actor"]) for e in entries][-2:] == [
        ("pause", "cli"),
        ("unpause", "cli"),
    ]
    # A server that does not answer, named with --server: an error (exit 3), nothing written.
    done = await asyncio.to_thread(
        run_cli, server, "drops", "pause", str(drop_id), "--server", "http://127.0.0.1:9", "--json"
    )
    assert done.returncode == 3 and json.loads(done.stdout)["error"]["code"] == "unavailable"
    assert (await get_drop(api, drop_id))["paused"] is False


async def test_the_cli_token_is_for_admin_requests_only(api: Api, server: Server) -> None:
    from sneakerd.cli.server_link import cli_token

    token = cli_token(server.jwt_secret, int(time.time()))
    drop = await api.drop(await api.admin())
    for method, path, body in (
        ("GET", "/api/users/profile", None),
        ("POST", "/api/reservations", {"dropId": drop["id"]}),
        ("GET", "/api/reservations/user", None),
    ):
        status, answer, _ = await api.call(method, path, token=token, json=body)
        assert_error(status, answer, 401, "unauthorized")
    status, answer, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=token, json={"name": "by the cli"}
    )
    assert status == 200 and answer["drop"]["name"] == "by the cli", answer
