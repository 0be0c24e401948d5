"""Purchases: buy my hold (through the drop's actor), list mine, list a drop's (public)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sneakerd.domain.commands import RequestKey
from sneakerd.views import drop_purchase_view, purchase_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, request_schema, response_schema
from sneakerd.web.idempotency import Answer
from sneakerd.web.jsonio import json_response
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import (
    BEARER,
    IDEMPOTENCY_HEADER,
    customer_front,
    errors_doc,
    known_user,
    path_id,
    principal,
)
from sneakerd.web.schemas import (
    PURCHASE,
    PublicPurchaseList,
    PurchaseEnvelope,
    PurchaseList,
    PurchaseRequest,
)


@docs(
    tags=["purchases"],
    summary="Buy my held unit at the drop's current price",
    description="Buying the same reservation again answers 200 with the same purchase.",
    security=BEARER,
    parameters=[IDEMPOTENCY_HEADER],
    responses={
        200: {"schema": PurchaseEnvelope, "description": "Already bought: the same purchase again"},
        **errors_doc(
            400,
            401,
            404,
            413,
            422,
            429,
            409,
            conflicts="reservation_expired, reservation_not_active",
        ),
    },
)
@request_schema(PurchaseRequest)
@response_schema(PurchaseEnvelope, 201)
async def purchase(request: web.Request) -> web.Response:
    who, data = await customer_front(request, PURCHASE)
    username = await known_user(request, who)
    app = request.app

    async def act(key: RequestKey | None) -> Answer:
        bought, created = await app[keys.SERVICE].purchase(
            who.user_id, username, data["reservation_id"], key
        )
        body = {"purchase": purchase_view(bought)}
        return Answer(201, body, recorded=key is not None) if created else Answer(200, body)

    async def rebuild(reservation_id: int) -> dict[str, Any] | None:
        bought = await app[keys.STORE].purchase_for_reservation(reservation_id)
        return None if bought is None else {"purchase": purchase_view(bought)}

    return await app[keys.IDEMPOTENCY].run(request, who.user_id, act, rebuild)


@docs(
    tags=["purchases"],
    summary="My purchases, newest first",
    security=BEARER,
    responses=errors_doc(401),
)
@response_schema(PurchaseList, 200)
async def my_purchases(request: web.Request) -> web.Response:
    who = principal(request)
    rows = await request.app[keys.STORE].user_purchases(who.user_id)
    return json_response({"purchases": [purchase_view(p) for p in rows]})


@docs(tags=["purchases"], summary="Who bought a drop (usernames only)", responses=errors_doc(404))
@response_schema(PublicPurchaseList, 200)
async def drop_purchases(request: web.Request) -> web.Response:
    drop_id = path_id(request)
    store = request.app[keys.STORE]
    if await store.get_drop(drop_id) is None:
        raise ApiError(404, "not_found", "No such drop")
    rows = await store.drop_purchases(drop_id)
    return json_response({"purchases": [drop_purchase_view(p) for p in rows]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/purchases", purchase)
    app.router.add_get("/api/purchases/user", my_purchases)
    app.router.add_get(r"/api/purchases/drop/{id:\d+}", drop_purchases)
