"""The waiting room over HTTP: join, read my ticket, reserve only with a live admission token,
admissions within what stock allows, and positions kept across a server restart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.conftest import Api
from tests.api.helpers import (
    assert_error,
    assert_validation,
    get_drop,
    purchase_call,
    reserve_call,
)
from tests.serverproc import Server

TICKET_KEYS = {
    "position",
    "joinedAt",
    "admitted",
    "admissionExpiresAt",
    "done",
    "estimatedWaitSeconds",
}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


async def join(api: Api, token: str, drop_id: int) -> dict[str, Any]:
    status, body, _ = await api.call("POST", f"/api/drops/{drop_id}/queue", token=token)
    assert status == 200, body
    assert set(body) == {"ticket"}
    assert set(body["ticket"]) - {"admissionToken"} == TICKET_KEYS, body
    return dict(body["ticket"])


async def mine(api: Api, token: str, drop_id: int) -> dict[str, Any]:
    status, body, _ = await api.call("GET", f"/api/drops/{drop_id}/queue/me", token=token)
    assert status == 200, body
    return dict(body["ticket"])


async def users(api: Api, count: int) -> list[str]:
    return [(await api.register())[1] for _ in range(count)]


async def test_a_queued_drop_says_so_and_a_plain_one_has_no_queue(
    api: Api, admin_token: str
) -> None:
    queued = await api.drop(admin_token, queue=True)
    plain = await api.drop(admin_token)
    assert queued["queue"] is True and plain["queue"] is False
    [token] = await users(api, 1)
    status, body, _ = await api.call("POST", f"/api/drops/{plain['id']}/queue", token=token)
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call("GET", f"/api/drops/{queued['id']}/queue/me", token=token)
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call("POST", f"/api/drops/{queued['id']}/queue")
    assert_error(status, body, 401, "unauthorized")
    status, body, _ = await api.call(
        "POST",
        "/api/drops",
        token=admin_token,
        json={"name": "x", "price": "1.00", "initialStock": 1, "queue": "yes"},
    )
    assert_error(status, body, 422, "validation_error")


async def test_one_account_one_place(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, queue=True, initialStock=1)
    first, second = await users(api, 2)
    a = await join(api, first, drop["id"])
    b = await join(api, second, drop["id"])
    again = await join(api, second, drop["id"])
    # position: 1 + the users still waiting ahead (none ahead of the admitted first, nor of b).
    assert a["admitted"] is True and a["position"] == 1 and "admissionToken" in a
    assert b["admitted"] is False and b["position"] == 1
    assert again == b
    assert await mine(api, second, drop["id"]) == b


async def test_reserve_needs_the_users_own_live_admission_token(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, queue=True, initialStock=1)
    first, second = await users(api, 2)
    ticket = await join(api, first, drop["id"])
    other = await join(api, second, drop["id"])
    assert ticket["admitted"] and not other["admitted"]
    token = ticket["admissionToken"]

    status, body = await reserve_call(api, first, drop["id"])
    assert_error(status, body, 409, "not_admitted")
    status, body = await reserve_call(api, first, drop["id"], {"Admission-Token": "1.2.3.ab"})
    assert_error(status, body, 409, "not_admitted")
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    status, body = await reserve_call(api, first, drop["id"], {"Admission-Token": forged})
    assert_error(status, body, 409, "not_admitted")
    # Another user's token, or this token on another drop, admits nobody.
    status, body = await reserve_call(api, second, drop["id"], {"Admission-Token": token})
    assert_error(status, body, 409, "not_admitted")
    elsewhere = await api.drop(admin_token, queue=True, initialStock=1)
    status, body = await reserve_call(api, first, elsewhere["id"], {"Admission-Token": token})
    assert_error(status, body, 409, "not_admitted")

    status, body = await reserve_call(api, first, drop["id"], {"Admission-Token": token})
    assert status == 201, body
    # The hold is bought: that turn is done, and the room admits the next user (none left to
    # sell here, so nobody).
    status, body = await purchase_call(api, first, body["reservation"]["id"])
    assert status == 201, body
    done = await mine(api, first, drop["id"])
    assert done["done"] is True and done["admitted"] is False and "admissionToken" not in done
    status, body = await reserve_call(api, first, drop["id"], {"Admission-Token": token})
    assert status == 409, body
    assert (await mine(api, second, drop["id"]))["admitted"] is False


async def test_admitted_and_unfinished_never_exceeds_what_stock_allows(
    api: Api, admin_token: str
) -> None:
    stock = 3
    drop = await api.drop(admin_token, queue=True, initialStock=stock)
    tokens = await users(api, 10)

    async def admitted(joined: int = len(tokens)) -> list[int]:
        tickets = [await mine(api, t, drop["id"]) for t in tokens[:joined]]
        return [i for i, t in enumerate(tickets) if t["admitted"]]

    for count, token in enumerate(tokens, start=1):
        await join(api, token, drop["id"])
        assert len(await admitted(count)) <= stock
    assert await admitted() == [0, 1, 2]
    positions = [(await mine(api, t, drop["id"]))["position"] for t in tokens]
    assert positions == [1, 1, 1, 1, 2, 3, 4, 5, 6, 7]  # the admitted have nobody waiting ahead

    # Each admitted user reserves; one buys, one cancels: the cancel frees a turn.
    holds = []
    for i in (0, 1, 2):
        ticket = await mine(api, tokens[i], drop["id"])
        status, body = await reserve_call(
            api, tokens[i], drop["id"], {"Admission-Token": ticket["admissionToken"]}
        )
        assert status == 201, body
        holds.append(body["reservation"]["id"])
        assert len(await admitted()) <= stock
    status, body = await purchase_call(api, tokens[0], holds[0])
    assert status == 201, body
    assert await admitted() == [1, 2]  # sold one: stock 0 + 2 held allows 2
    status, body, _ = await api.call("DELETE", f"/api/reservations/{holds[1]}", token=tokens[1])
    assert status == 200, body
    assert await admitted() == [2, 3]  # one unit back: the next in line is admitted
    assert (await mine(api, tokens[4], drop["id"]))["position"] == 1


async def test_positions_survive_a_restart(start_server: Callable[..., Server], http: Any) -> None:
    server = start_server()
    api = Api(http, server)
    admin = await api.admin()
    soon = datetime.now(UTC) + timedelta(seconds=3)
    drop = await api.drop(admin, queue=True, initialStock=2, startsAt=iso(soon))
    tokens = await users(api, 12)
    for token in tokens:
        ticket = await join(api, token, drop["id"])
        assert ticket["position"] is None  # the order is drawn at startsAt
    # The order is drawn by the drop's timer at startsAt and the first two are admitted after
    # it; on a loaded machine (two test workers on two cores) both come a little after the
    # clock, and twelve reads one by one can straddle them. Wait until the reads agree.
    settled = [1, 1, *range(1, 11)]

    def drawn(tickets: list[dict[str, Any]]) -> list[int]:
        return sorted(-1 if t["position"] is None else t["position"] for t in tickets)

    give_up = soon + timedelta(seconds=15)
    before = [await mine(api, t, drop["id"]) for t in tokens]
    while drawn(before) != settled and datetime.now(UTC) < give_up:
        await _sleep(0.2)
        before = [await mine(api, t, drop["id"]) for t in tokens]
    assert drawn(before) == settled, before
    server.stop()
    server.start()
    after = [await mine(api, t, drop["id"]) for t in tokens]
    assert [t["position"] for t in after] == [t["position"] for t in before]
    assert [t["admitted"] for t in after] == [t["admitted"] for t in before]
    late = await join(api, (await users(api, 1))[0], drop["id"])
    assert late["position"] == 11


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_queue_takes_true_or_false_only(api: Api, admin_token: str) -> None:
    """As `paused`: `1`, `0` or `"yes"` is a 422, not a waiting room switched on or off."""
    drop = await api.drop(admin_token)
    for value in (1, 0, "yes", None):
        status, body, _ = await api.call(
            "POST",
            "/api/drops",
            token=admin_token,
            json={"name": api.unique("q"), "price": "10", "initialStock": 1, "queue": value},
        )
        assert_validation(status, body, "queue")
        status, body, _ = await api.call(
            "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"queue": value}
        )
        assert_validation(status, body, "queue")
    assert (await get_drop(api, drop["id"]))["queue"] is False


async def test_a_waiting_room_that_opened_cannot_be_put_back_before_its_start(
    api: Api, admin_token: str
) -> None:
    """Moving a live queued drop's startsAt into the future let later joiners, placed at the
    new start, go ahead of the people already in line, and dropped a live admission."""
    drop = await api.drop(admin_token, queue=True, initialStock=1)
    _, first = await api.register()
    status, ticket, _ = await api.call("POST", f"/api/drops/{drop['id']}/queue", token=first)
    assert status in (200, 201) and ticket["ticket"]["admitted"] is True, ticket
    later = datetime.now(UTC) + timedelta(minutes=5)
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{drop['id']}",
        token=admin_token,
        json={"startsAt": later.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
    )
    assert_validation(status, body, "startsAt")
    status, mine, _ = await api.call("GET", f"/api/drops/{drop['id']}/queue/me", token=first)
    assert status == 200 and mine["ticket"]["admitted"] is True, mine
