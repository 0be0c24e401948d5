"""/compat/api/reservations and /compat/api/purchases: reserve and buy through the native
front (`sneakerd.web.routes.front`: token, rate limit, body, user check, Idempotency-Key, the
drop's actor), and the shopper's own holds and purchases, read from the store.

The answers say what the original said: a new hold with the drop's stock after it, a
purchase with the drop's, the shopper's lists numbered, a drop's buyers by name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from sneakerd import errors
from sneakerd.actors.registry import DropHandle
from sneakerd.domain.commands import RequestKey
from sneakerd.domain.model import Drop, PurchaseRecord, ReservationRecord, ReservationStatus
from sneakerd.store import MAX_PAGE, Store
from sneakerd.web import keys
from sneakerd.web.compat import failures
from sneakerd.web.compat.bodies import PURCHASE, RESERVE
from sneakerd.web.compat.envelope import Json, listed, ok, paging
from sneakerd.web.compat.views import (
    STATUSES_READ_AS,
    buyer_purchase_view,
    drop_brief,
    new_reservation_view,
    purchase_view,
    reservation_view,
)
from sneakerd.web.idempotency import Answer
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import path_id, principal
from sneakerd.web.routes.front import Customer, Outcomes, customer_write

MY_HOLDS_LIMIT = MAX_PAGE
"""The holds `/reservations/user` lists when no `limit` is asked: the original listed them
all, and a shopper has a handful (at most `holdsPerUser` per drop)."""


async def _drop_now(request: web.Request, drop_id: int) -> Drop | None:
    """The drop as its actor last committed it (no query for a live drop), else as stored."""
    app = request.app
    state = app[keys.SERVICE].committed_state(drop_id)
    if state is not None:
        return state.drop
    return await app[keys.STORE].get_drop(drop_id)


def _with_drop(body: Json, drop: Drop | None) -> Json:
    if drop is not None:
        body["drop"] = drop_brief(drop)
    return body


async def reserve(request: web.Request) -> web.Response:
    app = request.app
    service = app[keys.SERVICE]
    found: list[DropHandle] = []  # the drop's handle, looked up once per reserve

    async def refusal(user_id: int, data: dict[str, Any]) -> errors.DomainError | None:
        handle, refused = await service.reserve_refusal(user_id, data["drop_id"])
        if handle is not None:
            found.append(handle)
        return refused

    async def body(hold: ReservationRecord) -> Json:
        now = app[keys.CLOCK].now_ms()
        data = {"reservation": new_reservation_view(hold, now)}
        return {
            "success": True,
            "message": "Reservation created successfully",
            "data": _with_drop(data, await _drop_now(request, hold.drop_id)),
        }

    async def act(who: Customer, data: dict[str, Any], key: RequestKey | None) -> Answer:
        handle = found[0] if found else None
        hold = await service.reserve(who.user_id, data["drop_id"], key, handle=handle)
        return Answer(201, await body(hold), recorded=key is not None)

    async def rebuild(reservation_id: int) -> dict[str, Any] | None:
        hold = await app[keys.STORE].get_reservation(reservation_id)
        if hold is None:
            return None
        return await body(replace(hold, status=ReservationStatus.ACTIVE))

    outcomes = Outcomes(app[keys.METRICS].reservations, "reserved")
    return await customer_write(request, RESERVE, act, rebuild, refusal=refusal, outcomes=outcomes)


async def my_reservations(request: web.Request) -> web.Response:
    who = principal(request)
    status = request.query.get("status")
    if status is not None and status not in STATUSES_READ_AS:
        raise ApiError(
            422,
            "validation_error",
            "Bad status",
            {"status": [f"Must be one of: {', '.join(sorted(STATUSES_READ_AS))}."]},
        )
    asked = paging(request, default_limit=MY_HOLDS_LIMIT)
    store = app_store(request)
    found = await store.user_reservations_numbered(
        who.user_id,
        offset=asked.offset,
        limit=asked.limit,
        statuses=STATUSES_READ_AS[status] if status else (),
    )
    drops = await store.drops_by_ids([h.drop_id for h in found.items])
    now = request.app[keys.CLOCK].now_ms()
    views = [reservation_view(h, now, drops.get(h.drop_id)) for h in found.items]
    return listed("reservations", views, found, asked)


def app_store(request: web.Request) -> Store:
    return request.app[keys.STORE]


async def my_reservation(request: web.Request) -> web.Response:
    who = principal(request)
    store = app_store(request)
    hold = await store.get_reservation(path_id(request))
    if hold is None or hold.user_id != who.user_id:
        raise ApiError(404, "not_found", "Reservation not found")
    drops = await store.drops_by_ids([hold.drop_id])
    now = request.app[keys.CLOCK].now_ms()
    return ok({"reservation": reservation_view(hold, now, drops.get(hold.drop_id))})


async def cancel(request: web.Request) -> web.Response:
    request[failures.ACT] = failures.CANCEL
    who = principal(request)
    await request.app[keys.SERVICE].cancel(who.user_id, path_id(request))
    return ok(message="Reservation cancelled successfully")


async def purchase(request: web.Request) -> web.Response:
    app = request.app

    async def body(bought: PurchaseRecord) -> Json:
        data = {"purchase": purchase_view(bought, None)}
        return {
            "success": True,
            "message": "Purchase completed successfully",
            "data": _with_drop(data, await _drop_now(request, bought.drop_id)),
        }

    async def act(who: Customer, data: dict[str, Any], key: RequestKey | None) -> Answer:
        bought, created = await app[keys.SERVICE].purchase(
            who.user_id, who.username, data["reservation_id"], key
        )
        answer = await body(bought)
        return Answer(201, answer, recorded=key is not None) if created else Answer(200, answer)

    async def rebuild(reservation_id: int) -> dict[str, Any] | None:
        bought = await app[keys.STORE].purchase_for_reservation(reservation_id)
        return None if bought is None else await body(bought)

    return await customer_write(request, PURCHASE, act, rebuild)


async def my_purchases(request: web.Request) -> web.Response:
    who = principal(request)
    asked = paging(request)
    store = app_store(request)
    found = await store.user_purchases_numbered(who.user_id, offset=asked.offset, limit=asked.limit)
    drops = await store.drops_by_ids([p.drop_id for p in found.items])
    views = [purchase_view(p, drops.get(p.drop_id)) for p in found.items]
    return listed("purchases", views, found, asked)


async def my_purchase(request: web.Request) -> web.Response:
    who = principal(request)
    store = app_store(request)
    bought = await store.get_purchase(path_id(request))
    if bought is None or bought.user_id != who.user_id:
        raise ApiError(404, "not_found", "Purchase not found")
    drops = await store.drops_by_ids([bought.drop_id])
    return ok({"purchase": purchase_view(bought, drops.get(bought.drop_id))})


async def drop_purchases(request: web.Request) -> web.Response:
    drop_id = path_id(request, "drop_id")
    asked = paging(request)
    store = app_store(request)
    if await store.get_drop(drop_id) is None:
        raise ApiError(404, "not_found", "Drop not found")
    latest = await store.latest_purchases([drop_id], asked.limit)
    views = []
    for bought in latest[drop_id]:
        view = buyer_purchase_view(bought)
        views.append({k: view[k] for k in ("id", "price", "purchased_at", "user")})
    return ok({"purchases": views})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/reservations", reserve)
    app.router.add_get(f"{prefix}/reservations/user", my_reservations)
    app.router.add_get(rf"{prefix}/reservations/{{id:\d+}}", my_reservation)
    app.router.add_delete(rf"{prefix}/reservations/{{id:\d+}}", cancel)
    app.router.add_post(f"{prefix}/purchases", purchase)
    app.router.add_get(f"{prefix}/purchases/user", my_purchases)
    app.router.add_get(rf"{prefix}/purchases/{{id:\d+}}", my_purchase)
    app.router.add_get(rf"{prefix}/purchases/drop/{{drop_id:\d+}}", drop_purchases)
