"""The admin webhooks API: register, list and remove webhooks, and page through deliveries.

Admins only (403 for customers). The secret of a new webhook is in the answer to its POST and
nowhere else, ever.
"""

from __future__ import annotations

from aiohttp import web
from marshmallow import ValidationError

from sneakerd.domain.audit import user_actor
from sneakerd.store.base import PageKey
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, querystring_schema, request_schema, response_schema
from sneakerd.web.jsonio import json_response, read_object
from sneakerd.web.paging import ListKind, list_scope, page_body, start_after
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import BEARER, admin, errors_doc, path_id
from sneakerd.web.schemas.webhooks import (
    DeliveryList,
    DeliveryQuery,
    WebhookCreated,
    WebhookList,
    WebhookQuery,
    WebhookRequest,
)
from sneakerd.webhooks.registrations import BadWebhook, delivery_view, register, webhook_view

WEBHOOK = WebhookRequest()
DELIVERY_QUERY = DeliveryQuery()
WEBHOOK_QUERY = WebhookQuery()


@docs(
    tags=["webhooks"],
    summary="Register a webhook (admin); the answer holds its secret, shown this once",
    security=BEARER,
    responses=errors_doc(400, 401, 403, 413, 422),
)
@request_schema(WebhookRequest)
@response_schema(WebhookCreated, 201)
async def add_webhook(request: web.Request) -> web.Response:
    who = admin(request)
    data = WEBHOOK.load(await read_object(request))
    app = request.app
    try:
        webhook, secret = await register(
            app[keys.STORE].webhooks,
            data["url"],
            data["events"],
            app[keys.CLOCK].now_ms(),
            user_actor(who.user_id),
        )
    except BadWebhook as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None
    return json_response({"webhook": webhook_view(webhook), "secret": secret}, 201)


@docs(
    tags=["webhooks"],
    summary="The webhooks, oldest first, a page at a time (admin)",
    security=BEARER,
    responses=errors_doc(401, 403, 422),
)
@querystring_schema(WebhookQuery)
@response_schema(WebhookList, 200)
async def list_webhooks(request: web.Request) -> web.Response:
    admin(request)
    query = WEBHOOK_QUERY.load(dict(request.query))
    # A shop has a handful of webhooks: the page is cut from all of them, in id order.
    webhooks = await request.app[keys.STORE].webhooks.registered()
    after = start_after(query, scope := list_scope(query))
    if after is not None:
        webhooks = [w for w in webhooks if w.id > after.id]
    page = webhooks[: query["limit"]]
    last = PageKey(page[-1].created_at, page[-1].id) if len(webhooks) > len(page) else None
    views = [webhook_view(w) for w in page]
    return json_response(page_body("webhooks", views, ListKind.WEBHOOKS, last, scope))


@docs(
    tags=["webhooks"],
    summary="Remove a webhook and its deliveries (admin)",
    security=BEARER,
    responses={204: {"description": "Removed"}, **errors_doc(401, 403, 404)},
)
async def remove_webhook(request: web.Request) -> web.Response:
    who = admin(request)
    app = request.app
    removed = await app[keys.STORE].webhooks.remove(
        path_id(request), actor=user_actor(who.user_id), now=app[keys.CLOCK].now_ms()
    )
    if not removed:
        raise ApiError(404, "not_found", "No such webhook")
    return web.Response(status=204, content_type="application/json")


@docs(
    tags=["webhooks"],
    summary="Webhook deliveries, newest first, a page at a time; optionally of one state (admin)",
    security=BEARER,
    responses=errors_doc(401, 403, 422),
)
@querystring_schema(DeliveryQuery)
@response_schema(DeliveryList, 200)
async def list_deliveries(request: web.Request) -> web.Response:
    admin(request)
    query = DELIVERY_QUERY.load(dict(request.query))
    page = await request.app[keys.STORE].webhooks.deliveries(
        state=query.get("state"),
        limit=query["limit"],
        after=start_after(query, scope := list_scope(query)),
    )
    views = [delivery_view(d) for d in page.items]
    return json_response(
        page_body("deliveries", views, ListKind.WEBHOOK_DELIVERIES, page.next, scope)
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/admin/webhooks", list_webhooks)
    app.router.add_post("/api/admin/webhooks", add_webhook)
    app.router.add_get("/api/admin/webhooks/deliveries", list_deliveries)
    app.router.add_delete(r"/api/admin/webhooks/{id:\d+}", remove_webhook)
