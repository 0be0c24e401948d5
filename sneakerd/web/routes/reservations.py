"""Holds: reserve (through the drop's actor), list mine, look one up, cancel."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from sneakerd import errors
from sneakerd.actors.registry import DropHandle
from sneakerd.domain.commands import RequestKey
from sneakerd.domain.model import ReservationStatus
from sneakerd.views import reservation_view
from sneakerd.web import admission, keys
from sneakerd.web.apidoc import docs, querystring_schema, request_schema, response_schema
from sneakerd.web.idempotency import Answer
from sneakerd.web.jsonio import json_response
from sneakerd.web.paging import ListKind, list_scope, page_body, start_after
from sneakerd.web.problems import ApiError
from sneakerd.web.routes import queue
from sneakerd.web.routes.common import (
    BEARER,
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_422,
    errors_doc,
    path_id,
    principal,
)
from sneakerd.web.routes.front import Customer, Outcomes, customer_write
from sneakerd.web.schemas import (
    RESERVATION_QUERY,
    RESERVE,
    ReservationEnvelope,
    ReservationList,
    ReservationQuery,
    ReserveRequest,
)


@docs(
    tags=["reservations"],
    summary="Hold one unit of a drop",
    description="The hold lasts RESERVATION_DURATION ms (60 s by default). perUserLimit "
    "counts a user's active holds plus purchases in the drop. On a drop with a waiting room "
    "(queue: true) send the ticket's admissionToken as Admission-Token, else 409 not_admitted.",
    security=BEARER,
    parameters=[IDEMPOTENCY_HEADER, queue.ADMISSION_HEADER],
    responses=errors_doc(
        400,
        401,
        404,
        413,
        422,
        429,
        409,
        conflicts=(
            "out_of_stock, limit_reached, drop_not_live, drop_ended, request_in_progress, "
            "drop_paused, raffle_only, not_admitted"
        ),
        codes=IDEMPOTENT_422,
    ),
)
@request_schema(ReserveRequest)
@response_schema(ReservationEnvelope, 201)
async def reserve(request: web.Request) -> web.Response:
    app = request.app
    service = app[keys.SERVICE]

    found: list[DropHandle] = []  # the drop's handle, looked up once per reserve
    token = request.headers.get(admission.HEADER)

    def admitted(user_id: int, drop_id: int) -> bool:
        if token is None:  # nearly every reserve: a drop without a waiting room
            return False
        return app[queue.ADMISSIONS].valid(token, drop_id, user_id, app[keys.CLOCK].now_ms())

    async def refusal(user_id: int, data: dict[str, Any]) -> errors.DomainError | None:
        handle, refused = await service.reserve_refusal(
            user_id, data["drop_id"], admitted=admitted(user_id, data["drop_id"])
        )
        if handle is not None:
            found.append(handle)
        return refused

    async def act(who: Customer, data: dict[str, Any], key: RequestKey | None) -> Answer:
        handle = found[0] if found else None
        drop_id = data["drop_id"]
        hold = await service.reserve(
            who.user_id, drop_id, key, handle=handle, admitted=admitted(who.user_id, drop_id)
        )
        return Answer(201, {"reservation": reservation_view(hold)}, recorded=key is not None)

    async def rebuild(reservation_id: int) -> dict[str, Any] | None:
        # The first answer showed the hold as it was made: active, whatever became of it.
        hold = await app[keys.STORE].get_reservation(reservation_id)
        if hold is None:
            return None
        return {"reservation": reservation_view(replace(hold, status=ReservationStatus.ACTIVE))}

    outcomes = Outcomes(app[keys.METRICS].reservations, "reserved")
    return await customer_write(request, RESERVE, act, rebuild, refusal=refusal, outcomes=outcomes)


@docs(
    tags=["reservations"],
    summary="My reservations, newest first, a page at a time; optionally of one status",
    description="Follow `nextCursor` (pass it as `cursor`) until it is null to read them all.",
    security=BEARER,
    responses=errors_doc(401, 422),
)
@querystring_schema(ReservationQuery)
@response_schema(ReservationList, 200)
async def my_reservations(request: web.Request) -> web.Response:
    who = principal(request)
    query = RESERVATION_QUERY.load(dict(request.query))
    status = query.get("status")
    page = await request.app[keys.STORE].user_reservations(
        who.user_id,
        limit=query["limit"],
        after=start_after(query, scope := list_scope(query, who.user_id)),
        status=None if status is None else ReservationStatus(status),
    )
    views = [reservation_view(r) for r in page.items]
    return json_response(page_body("reservations", views, ListKind.RESERVATIONS, page.next, scope))


@docs(
    tags=["reservations"],
    summary="One of my reservations",
    description="Another user's reservation answers 404, exactly as one that does not exist.",
    security=BEARER,
    responses=errors_doc(401, 404),
)
@response_schema(ReservationEnvelope, 200)
async def my_reservation(request: web.Request) -> web.Response:
    who = principal(request)
    record = await request.app[keys.STORE].get_reservation(path_id(request))
    if record is None or record.user_id != who.user_id:
        raise ApiError(404, "not_found", "No such reservation")
    return json_response({"reservation": reservation_view(record)})


@docs(
    tags=["reservations"],
    summary="Cancel my hold; its unit returns to stock at once",
    security=BEARER,
    responses=errors_doc(401, 404, 409, conflicts="reservation_not_active, reservation_expired"),
)
@response_schema(ReservationEnvelope, 200)
async def cancel(request: web.Request) -> web.Response:
    who = principal(request)
    record = await request.app[keys.SERVICE].cancel(who.user_id, path_id(request))
    return json_response({"reservation": reservation_view(record)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/reservations", reserve)
    app.router.add_get("/api/reservations/user", my_reservations)
    app.router.add_get(r"/api/reservations/{id:\d+}", my_reservation)
    app.router.add_delete(r"/api/reservations/{id:\d+}", cancel)
