"""Purchases: buy my hold (through the drop's actor), list mine, look one of mine up, list a
drop's (public)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sneakerd.domain.commands import RequestKey
from sneakerd.views import drop_purchase_view, purchase_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, querystring_schema, request_schema, response_schema
from sneakerd.web.idempotency import Answer
from sneakerd.web.jsonio import json_response
from sneakerd.web.paging import ListKind, list_scope, page_body, start_after
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import (
    BEARER,
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_422,
    errors_doc,
    path_id,
    principal,
)
from sneakerd.web.routes.front import Customer, customer_write
from sneakerd.web.schemas import (
    DROP_PURCHASE_QUERY,
    PURCHASE,
    PURCHASE_QUERY,
    DropPurchaseQuery,
    PublicPurchaseList,
    PurchaseEnvelope,
    PurchaseList,
    PurchaseQuery,
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
            conflicts=(
                "reservation_expired, reservation_not_active, request_in_progress, drop_paused"
            ),
            codes=IDEMPOTENT_422,
        ),
    },
)
@request_schema(PurchaseRequest)
@response_schema(PurchaseEnvelope, 201)
async def purchase(request: web.Request) -> web.Response:
    app = request.app

    async def act(who: Customer, data: dict[str, Any], key: RequestKey | None) -> Answer:
        bought, created = await app[keys.SERVICE].purchase(
            who.user_id, who.username, data["reservation_id"], key
        )
        body = {"purchase": purchase_view(bought)}
        return Answer(201, body, recorded=key is not None) if created else Answer(200, body)

    async def rebuild(reservation_id: int) -> dict[str, Any] | None:
        bought = await app[keys.STORE].purchase_for_reservation(reservation_id)
        return None if bought is None else {"purchase": purchase_view(bought)}

    return await customer_write(request, PURCHASE, act, rebuild)


@docs(
    tags=["purchases"],
    summary="My purchases, newest first, a page at a time",
    description="Follow `nextCursor` (pass it as `cursor`) until it is null to read them all.",
    security=BEARER,
    responses=errors_doc(401, 422),
)
@querystring_schema(PurchaseQuery)
@response_schema(PurchaseList, 200)
async def my_purchases(request: web.Request) -> web.Response:
    who = principal(request)
    query = PURCHASE_QUERY.load(dict(request.query))
    page = await request.app[keys.STORE].user_purchases(
        who.user_id,
        limit=query["limit"],
        after=start_after(query, scope := list_scope(query, who.user_id)),
    )
    views = [purchase_view(p) for p in page.items]
    return json_response(page_body("purchases", views, ListKind.PURCHASES, page.next, scope))


@docs(
    tags=["purchases"],
    summary="One of my purchases",
    description="Another user's purchase answers 404, exactly as one that does not exist.",
    security=BEARER,
    responses=errors_doc(401, 404),
)
@response_schema(PurchaseEnvelope, 200)
async def my_purchase(request: web.Request) -> web.Response:
    who = principal(request)
    bought = await request.app[keys.STORE].get_purchase(path_id(request))
    if bought is None or bought.user_id != who.user_id:
        raise ApiError(404, "not_found", "No such purchase")
    return json_response({"purchase": purchase_view(bought)})


@docs(
    tags=["purchases"],
    summary="Who bought a drop (usernames only), newest first, a page at a time",
    responses=errors_doc(404, 422),
)
@querystring_schema(DropPurchaseQuery)
@response_schema(PublicPurchaseList, 200)
async def drop_purchases(request: web.Request) -> web.Response:
    drop_id = path_id(request)
    query = DROP_PURCHASE_QUERY.load(dict(request.query))
    store = request.app[keys.STORE]
    if await store.get_drop(drop_id) is None:
        raise ApiError(404, "not_found", "No such drop")
    scope = list_scope(query, drop_id)
    page = await store.drop_purchases(
        drop_id, limit=query["limit"], after=start_after(query, scope)
    )
    views = [drop_purchase_view(p) for p in page.items]
    return json_response(page_body("purchases", views, ListKind.DROP_PURCHASES, page.next, scope))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/purchases", purchase)
    app.router.add_get("/api/purchases/user", my_purchases)
    app.router.add_get(r"/api/purchases/{id:\d+}", my_purchase)
    app.router.add_get(r"/api/purchases/drop/{id:\d+}", drop_purchases)
