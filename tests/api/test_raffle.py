"""A raffle drop over HTTP, on both stores: its fields and their validation, entering, the
proofs as they appear, the draw recomputed here from the published values, and the winners'
holds bought through the ordinary purchase path."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from loadtest.receiver import Receiver
from tests.api.conftest import Api
from tests.api.helpers import assert_error, assert_validation, get_drop, reserve_call


def _at(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _order(seed_hex: str, entries: list[int]) -> list[int]:
    seed = bytes.fromhex(seed_hex)
    return sorted(
        entries, key=lambda i: hmac.new(seed, str(i).encode(), hashlib.sha256).hexdigest()
    )


async def _raffle(api: Api, admin_token: str, stock: int, close_in: float) -> dict[str, Any]:
    return await api.drop(
        admin_token,
        initialStock=stock,
        mode="raffle",
        entriesOpenAt=_at(-1),
        entriesCloseAt=_at(close_in),
        claimSeconds=120,
    )


async def _enter(api: Api, drop_id: int, *tokens: str) -> None:
    """Each token's user enters the draw (every entry must be taken)."""
    for token in tokens:
        status, body, _ = await api.call("POST", f"/api/drops/{drop_id}/entries", token=token)
        assert status == 201, body


async def _change(api: Api, admin_token: str, drop_id: int, **fields: Any) -> None:
    """An admin's `PUT /api/drops/{id}` with `fields`, which must be taken."""
    status, body, _ = await api.call("PUT", f"/api/drops/{drop_id}", token=admin_token, json=fields)
    assert status == 200, body


async def _drawn(api: Api, drop_id: int, within: float = 20) -> dict[str, Any]:
    """Poll the public record until the seed is published (the draw committed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, body, _ = await api.call("GET", f"/api/drops/{drop_id}/raffle")
        assert status == 200, body
        if body["raffle"]["seed"] is not None:
            return dict(body["raffle"])
        await asyncio.sleep(0.1)
    raise AssertionError("the draw was not published in time")


async def test_a_raffle_needs_a_window_that_opens_before_it_closes(
    api: Api, admin_token: str
) -> None:
    base = {"name": api.unique("r"), "price": "10", "initialStock": 1, "mode": "raffle"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"entriesCloseAt": _at(60)}, "entriesOpenAt"),
        ({"entriesOpenAt": _at(0)}, "entriesCloseAt"),
        ({"entriesOpenAt": _at(60), "entriesCloseAt": _at(30)}, "entriesCloseAt"),
        (
            {"entriesOpenAt": _at(0), "entriesCloseAt": _at(60), "endsAt": _at(30)},
            "entriesCloseAt",
        ),
        ({"entriesOpenAt": _at(0), "entriesCloseAt": _at(60), "claimSeconds": 0}, "claimSeconds"),
        ({"mode": "lottery"}, "mode"),
    ]
    for extra, field in cases:
        status, body, _ = await api.call(
            "POST", "/api/drops", token=admin_token, json={**base, **extra}
        )
        assert_validation(status, body, field)
    plain = await api.drop(admin_token)
    assert plain["mode"] == "fcfs" and plain["raffle"] is None and plain["claimSeconds"] == 600


async def test_entering_the_draw_once_and_the_refusals_around_it(
    api: Api, admin_token: str
) -> None:
    _, token = await api.register()
    drop = await _raffle(api, admin_token, stock=1, close_in=60)
    path = f"/api/drops/{drop['id']}/entries"
    status, none, _ = await api.call("GET", path + "/me", token=token)
    assert status == 200 and none == {"entry": None}, none
    status, body, _ = await api.call("POST", path)
    assert_error(status, body, 401, "unauthorized")
    status, body, _ = await api.call("POST", path, token=token)
    assert status == 201, body
    assert set(body["entry"]) >= {"id", "createdAt"}
    status, again, _ = await api.call("POST", path, token=token)
    assert_error(status, again, 409, "already_entered")
    status, mine, _ = await api.call("GET", path + "/me", token=token)
    assert status == 200 and mine["entry"]["id"] == body["entry"]["id"], mine
    assert mine["entry"]["result"] is None, "not drawn yet"
    status, held = await reserve_call(api, token, drop["id"])
    assert_error(status, held, 409, "raffle_only")

    shown = (await get_drop(api, drop["id"]))["raffle"]
    assert len(shown["seedCommitment"]) == 64 and shown["seed"] is None
    assert shown["entriesDigest"] is None and shown["entryCount"] == 1

    later = await api.drop(
        admin_token,
        mode="raffle",
        entriesOpenAt=_at(3600),
        entriesCloseAt=_at(7200),
    )
    status, body, _ = await api.call("POST", f"/api/drops/{later['id']}/entries", token=token)
    assert_error(status, body, 409, "entries_not_open")
    assert later["raffle"]["seedCommitment"] is None, "shown from entriesOpenAt only"
    plain = await api.drop(admin_token)
    status, body, _ = await api.call("POST", f"/api/drops/{plain['id']}/entries", token=token)
    assert_error(status, body, 409, "not_a_raffle")
    status, body, _ = await api.call("POST", "/api/drops/999999999/entries", token=token)
    assert_error(status, body, 404, "not_found")
    status, body, _ = await api.call("GET", f"/api/drops/{plain['id']}/raffle")
    assert_error(status, body, 409, "not_a_raffle")


async def test_the_published_draw_recomputes_and_winners_buy_their_holds(
    api: Api, admin_token: str
) -> None:
    people = [await api.register() for _ in range(5)]
    drop = await _raffle(api, admin_token, stock=2, close_in=600)
    entry_of: dict[int, str] = {}
    for _, token in people:
        status, body, _ = await api.call("POST", f"/api/drops/{drop['id']}/entries", token=token)
        assert status == 201, body
        entry_of[body["entry"]["id"]] = token
    status, before, _ = await api.call("GET", f"/api/drops/{drop['id']}/raffle")
    assert status == 200 and before["raffle"]["winners"] is None
    commitment = before["raffle"]["seedCommitment"]
    # Everyone is in: close the entries half a second from now, however long that took.
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"entriesCloseAt": _at(0.5)}
    )
    assert status == 200, body

    raffle = await _drawn(api, drop["id"])
    seed = raffle["seed"]
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == commitment
    assert raffle["seedCommitment"] == commitment
    assert raffle["entries"] == sorted(entry_of)
    digest = hashlib.sha256("\n".join(map(str, sorted(entry_of))).encode()).hexdigest()
    assert raffle["entriesDigest"] == digest
    assert raffle["winners"] == _order(seed, sorted(entry_of))[:2]

    status, late, _ = await api.call(
        "POST", f"/api/drops/{drop['id']}/entries", token=(await api.register())[1]
    )
    assert_error(status, late, 409, "entries_closed")

    winner, loser = raffle["winners"][0], next(e for e in entry_of if e not in raffle["winners"])
    status, mine, _ = await api.call(
        "GET", f"/api/drops/{drop['id']}/entries/me", token=entry_of[loser]
    )
    assert status == 200 and mine["entry"]["result"] == "lost", mine
    token = entry_of[winner]
    status, mine, _ = await api.call("GET", f"/api/drops/{drop['id']}/entries/me", token=token)
    assert status == 200 and mine["entry"]["result"] == "won", mine
    status, holds, _ = await api.call("GET", "/api/reservations/user?status=active", token=token)
    assert status == 200, holds
    [hold] = [r for r in holds["reservations"] if r["dropId"] == drop["id"]]
    status, bought, _ = await api.call(
        "POST", "/api/purchases", token=token, json={"reservationId": hold["id"]}
    )
    assert status == 201, bought
    shown = await get_drop(api, drop["id"])
    assert (shown["stock"], shown["reserved"], shown["sold"]) == (0, 1, 1)
    assert shown["raffle"]["seed"] == seed and shown["raffle"]["drawnAt"] is not None


async def test_an_admin_makes_a_drop_a_raffle_and_cannot_move_a_closed_window(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{drop['id']}",
        token=admin_token,
        json={"mode": "raffle", "entriesOpenAt": _at(-1), "entriesCloseAt": _at(1.0)},
    )
    assert status == 200, body
    assert body["drop"]["mode"] == "raffle" and len(body["drop"]["raffle"]["seedCommitment"]) == 64
    await _drawn(api, drop["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"entriesCloseAt": _at(60)}
    )
    assert_validation(status, body, "entriesCloseAt")


async def _held(api: Api, token: str, drop_id: int) -> list[dict[str, Any]]:
    status, body, _ = await api.call("GET", "/api/reservations/user?status=active", token=token)
    assert status == 200, body
    return [r for r in body["reservations"] if r["dropId"] == drop_id]


async def test_a_win_that_lapses_after_the_end_passes_to_no_one(api: Api, admin_token: str) -> None:
    """Holds are granted until `endsAt`: the first winner's claim runs past the end, and when
    it lapses the unit stays unsold, rather than becoming a new hold, which could be bought,
    on a drop that has ended."""
    (_, first), (_, second) = [await api.register() for _ in range(2)]
    drop = await api.drop(
        admin_token,
        initialStock=1,
        mode="raffle",
        entriesOpenAt=_at(-1),
        entriesCloseAt=_at(60),
        endsAt=_at(120),
        claimSeconds=1,
    )
    await _enter(api, drop["id"], first, second)
    await _change(api, admin_token, drop["id"], entriesCloseAt=_at(0.3), endsAt=_at(0.6))
    raffle = await _drawn(api, drop["id"])
    assert len(raffle["winners"]) == 1, raffle
    await asyncio.sleep(2.5)  # the win lapsed (1 s), after the end (0.6 s)
    shown = await get_drop(api, drop["id"])
    assert shown["status"] == "ended", shown
    assert (shown["stock"], shown["reserved"], shown["sold"]) == (1, 0, 0), shown
    raffle = await _drawn(api, drop["id"])
    assert len(raffle["winners"]) == 1, raffle  # the win passed to no one
    made = 0
    for token in (first, second):
        status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
        assert status == 200, body
        made += sum(1 for r in body["reservations"] if r["dropId"] == drop["id"])
    assert made == 1, "one hold, the first winner's, and none after the end"


async def test_the_draw_waits_for_the_drops_start(api: Api, admin_token: str) -> None:
    """Holds are granted from `startsAt`: entries that close before it are digested at the
    close, but the winners' holds (and the seed) come at `startsAt`, not before."""
    _, token = await api.register()
    drop = await api.drop(
        admin_token,
        initialStock=1,
        mode="raffle",
        entriesOpenAt=_at(-1),
        entriesCloseAt=_at(60),
        startsAt=_at(120),
        claimSeconds=120,
    )
    await _enter(api, drop["id"], token)
    await _change(api, admin_token, drop["id"], entriesCloseAt=_at(0.3), startsAt=_at(2.0))
    await asyncio.sleep(1.0)
    shown = await get_drop(api, drop["id"])
    assert shown["status"] == "upcoming", shown
    assert shown["raffle"]["entriesDigest"] is not None, "digested at the close"
    assert shown["raffle"]["seed"] is None and shown["reserved"] == 0, shown
    assert await _held(api, token, drop["id"]) == []
    raffle = await _drawn(api, drop["id"])
    [hold] = await _held(api, token, drop["id"])
    assert raffle["winners"] == raffle["entries"], raffle  # the one entry won
    assert hold["createdAt"] >= shown["startsAt"], (hold, shown["startsAt"])


async def test_a_raffle_has_no_waiting_room(api: Api, admin_token: str) -> None:
    """A raffle's winners are drawn, not admitted from a line: `queue` with `mode: raffle`
    would hand out admission tokens that no reserve could use."""
    base = {
        "name": api.unique("r"),
        "price": "10",
        "initialStock": 1,
        "mode": "raffle",
        "entriesOpenAt": _at(-1),
        "entriesCloseAt": _at(60),
    }
    status, body, _ = await api.call(
        "POST", "/api/drops", token=admin_token, json={**base, "queue": True}
    )
    assert_validation(status, body, "queue")
    drop = await _raffle(api, admin_token, stock=1, close_in=60)
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"queue": True}
    )
    assert_validation(status, body, "queue")
    queued = await api.drop(admin_token, queue=True)
    status, body, _ = await api.call(
        "PUT",
        f"/api/drops/{queued['id']}",
        token=admin_token,
        json={"mode": "raffle", "entriesOpenAt": _at(-1), "entriesCloseAt": _at(60)},
    )
    assert_validation(status, body, "queue")
    assert (await get_drop(api, queued["id"]))["mode"] == "fcfs"


async def test_a_winners_hold_is_announced_to_webhooks_as_any_hold_is(
    api: Api, admin_token: str
) -> None:
    """The draw makes holds: each is a `reservation.created` (before its purchase or
    expiry), and the last unit taken is a `drop.sold_out`, as when a shopper reserves."""
    receiver = await Receiver().start()
    status, made, _ = await api.call(
        "POST",
        "/api/admin/webhooks",
        token=admin_token,
        json={"url": receiver.url, "events": ["reservation.created", "drop.sold_out"]},
    )
    assert status == 201, made
    receiver.secret = made["secret"]
    try:
        people = [await api.register() for _ in range(2)]
        drop = await _raffle(api, admin_token, stock=1, close_in=60)
        await _enter(api, drop["id"], *(token for _, token in people))
        await _change(api, admin_token, drop["id"], entriesCloseAt=_at(0.3))
        await _drawn(api, drop["id"])

        def mine() -> list[Any]:
            return [
                r
                for r in receiver.got
                if (r.payload["data"].get("drop") or r.payload["data"].get("reservation", {})).get(
                    "id" if "drop" in r.payload["data"] else "dropId"
                )
                == drop["id"]
            ]

        deadline = time.monotonic() + 20
        while len(mine()) < 2:
            assert time.monotonic() < deadline, [r.type for r in receiver.got]
            await asyncio.sleep(0.05)
        got = mine()
        assert [r.type for r in got] == ["reservation.created", "drop.sold_out"], got
        assert all(r.signed for r in got)
        hold = got[0].payload["data"]["reservation"]
        assert hold["status"] == "active" and hold["dropId"] == drop["id"], hold
    finally:
        await api.call("DELETE", f"/api/admin/webhooks/{made['webhook']['id']}", token=admin_token)
        await receiver.stop()


async def test_the_entry_window_cannot_open_later_once_someone_entered(
    api: Api, admin_token: str
) -> None:
    """An entry taken at 10:00 under a window moved to open at 10:05 would predate it, and
    the commitment already published would be withdrawn: once anyone has entered, the
    opening stays (the close may still move until it passes)."""
    _, token = await api.register()
    drop = await _raffle(api, admin_token, stock=1, close_in=600)
    await _enter(api, drop["id"], token)
    path = f"/api/drops/{drop['id']}"
    status, body, _ = await api.call(
        "PUT", path, token=admin_token, json={"entriesOpenAt": _at(30)}
    )
    assert_validation(status, body, "entriesOpenAt")
    shown = await get_drop(api, drop["id"])
    assert shown["entriesOpenAt"] == drop["entriesOpenAt"], shown
    assert shown["raffle"]["seedCommitment"] == drop["raffle"]["seedCommitment"]
    status, body, _ = await api.call(
        "PUT", path, token=admin_token, json={"entriesCloseAt": _at(300)}
    )
    assert status == 200, body


async def test_a_new_raffle_whose_entries_have_already_closed_is_refused(
    api: Api, admin_token: str
) -> None:
    """Its draw ran at once with no entry, and its units could then never be sold (reserve on
    a raffle is `raffle_only`): a typo in a date, refused before it is made."""
    status, body, _ = await api.call(
        "POST",
        "/api/drops",
        token=admin_token,
        json={
            "name": api.unique("r"),
            "price": "10",
            "initialStock": 3,
            "mode": "raffle",
            "entriesOpenAt": _at(-100),
            "entriesCloseAt": _at(-50),
        },
    )
    assert_validation(status, body, "entriesCloseAt")
    assert "future" in str(body["error"]["details"]["entriesCloseAt"]), body
