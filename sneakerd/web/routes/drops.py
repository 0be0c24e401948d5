"""The drops: list, get and stats for anyone; create, update and delete for admins.

Reads come from committed state (the store, or a live drop's actor); writes to an existing
drop go through its actor.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sneakerd.domain.commands import UpdateDrop
from sneakerd.domain.model import DropInfo, DropMode, DropStatus
from sneakerd.domain.raffle import DEFAULT_CLAIM_SECONDS
from sneakerd.store.raffle_rows import new_seed
from sneakerd.views import drop_stats_view, drop_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, querystring_schema, request_schema, response_schema
from sneakerd.web.jsonio import json_response, read_object
from sneakerd.web.paging import ListKind, list_scope, page_body, start_after
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import BEARER, actor_of, admin, errors_doc, path_id
from sneakerd.web.schemas import (
    CREATE_DROP,
    DROP_QUERY,
    READ_ONLY_DROP_KEYS,
    UPDATE_DROP,
    CreateDropRequest,
    DropEnvelope,
    DropList,
    DropQuery,
    DropStatsEnvelope,
    UpdateDropRequest,
)


@docs(
    tags=["drops"],
    summary="The drops, newest first, a page at a time; optionally searched or of one status",
    description="Follow `nextCursor` (pass it as `cursor`) until it is null to read every "
    "drop. `q` matches a case-insensitive substring of the name or the brand.",
    responses=errors_doc(422),
)
@querystring_schema(DropQuery)
@response_schema(DropList, 200)
async def list_drops(request: web.Request) -> web.Response:
    query = DROP_QUERY.load(dict(request.query))
    now = request.app[keys.CLOCK].now_ms()
    status = query.get("status")
    page = await request.app[keys.STORE].list_drops(
        now=now,
        limit=query["limit"],
        after=start_after(query, scope := list_scope(query)),
        q=query.get("q") or None,
        status=None if status is None else DropStatus(status),
    )
    views = [drop_view(d, now) for d in page.items]
    return json_response(page_body("drops", views, ListKind.DROPS, page.next, scope))


@docs(tags=["drops"], summary="One drop", responses=errors_doc(404))
@response_schema(DropEnvelope, 200)
async def get_drop(request: web.Request) -> web.Response:
    drop = await request.app[keys.STORE].get_drop(path_id(request))
    if drop is None:
        raise ApiError(404, "not_found", "No such drop")
    return json_response({"drop": drop_view(drop, request.app[keys.CLOCK].now_ms())})


@docs(
    tags=["drops"],
    summary="A drop's unit counts, holds expiring within a minute, and when it sold out",
    description="`soldOutAt` is the time of the purchase that sold the last unit, null while "
    "any unit is unsold.",
    responses=errors_doc(404),
)
@response_schema(DropStatsEnvelope, 200)
async def drop_stats(request: web.Request) -> web.Response:
    stats = await request.app[keys.SERVICE].drop_stats(path_id(request))
    return json_response({"stats": drop_stats_view(stats)})


@docs(
    tags=["drops"],
    summary="Create a drop (admin)",
    security=BEARER,
    responses=errors_doc(400, 401, 403, 413, 422),
)
@request_schema(CreateDropRequest)
@response_schema(DropEnvelope, 201)
async def create_drop(request: web.Request) -> web.Response:
    who = admin(request)
    data = CREATE_DROP.load(await read_object(request))
    clock = request.app[keys.CLOCK]
    info = DropInfo(
        name=data["name"],
        price=data["price"],
        brand=data.get("brand"),
        description=data.get("description"),
        image_url=data.get("image_url"),
        per_user_limit=data.get("per_user_limit", 1),
        holds_per_user=data.get("holds_per_user", 3),
        queue=data.get("queue", False),
        starts_at=data.get("starts_at", clock.now_ms()),
        ends_at=data.get("ends_at"),
        mode=DropMode(data.get("mode", DropMode.FCFS)),
        entries_open_at=data.get("entries_open_at"),
        entries_close_at=data.get("entries_close_at"),
        claim_seconds=data.get("claim_seconds", DEFAULT_CLAIM_SECONDS),
        paused=data.get("paused", False),
    )
    actor = actor_of(who)
    drop = await request.app[keys.SERVICE].create_drop(info, data["initial_stock"], actor)
    return json_response({"drop": drop_view(drop, clock.now_ms())}, 201)


@docs(
    tags=["drops"],
    summary="Change a drop (admin): any field; restock or reduce stock; pause or unpause",
    description="`initialStock` may rise, or fall to no less than reserved + sold. "
    "`paused: true` makes reserve and purchase answer 409 `drop_paused` (holds keep their "
    "deadlines); `paused: false` opens the sale again. Each change is logged in the audit "
    "log (`GET /api/admin/audit`). "
    "Read-only fields (id, stock, reserved, sold, status, version, createdAt, updatedAt) "
    "are ignored, so a GET body can be edited and sent back.",
    security=BEARER,
    responses=errors_doc(400, 401, 403, 404, 413, 422, 409, conflicts="stock_below_committed"),
)
@request_schema(UpdateDropRequest)
@response_schema(DropEnvelope, 200)
async def update_drop(request: web.Request) -> web.Response:
    who = admin(request)
    drop_id = path_id(request)
    raw = {k: v for k, v in (await read_object(request)).items() if k not in READ_ONLY_DROP_KEYS}
    data: dict[str, Any] = UPDATE_DROP.load(raw)
    app = request.app
    # The sale window is checked by the drop's actor against the drop it is about to change,
    # so two edits that each move one end cannot together leave a window that ends first.
    clear = frozenset(
        k for k in ("brand", "description", "image_url", "ends_at") if k in data and data[k] is None
    )
    mode = None if "mode" not in data else DropMode(data["mode"])
    update = UpdateDrop(
        name=data.get("name"),
        price=data.get("price"),
        brand=data.get("brand"),
        description=data.get("description"),
        image_url=data.get("image_url"),
        per_user_limit=data.get("per_user_limit"),
        holds_per_user=data.get("holds_per_user"),
        starts_at=data.get("starts_at"),
        ends_at=data.get("ends_at"),
        initial_stock=data.get("initial_stock"),
        queue=data.get("queue"),
        clear=clear,
        mode=mode,
        entries_open_at=data.get("entries_open_at"),
        entries_close_at=data.get("entries_close_at"),
        claim_seconds=data.get("claim_seconds"),
        # Used only if this change makes the drop a raffle (the actor decides that).
        seed=None if mode is not DropMode.RAFFLE else new_seed(),
        paused=data.get("paused"),
        actor=actor_of(who),
    )
    drop = await app[keys.SERVICE].update_drop(drop_id, update)
    return json_response({"drop": drop_view(drop, app[keys.CLOCK].now_ms())})


@docs(
    tags=["drops"],
    summary="Delete a drop (admin); its active holds are cancelled",
    security=BEARER,
    responses={
        204: {"description": "Deleted"},
        **errors_doc(401, 403, 404, 409, conflicts="drop_has_sales"),
    },
)
async def delete_drop(request: web.Request) -> web.Response:
    who = admin(request)
    await request.app[keys.SERVICE].delete_drop(path_id(request), actor_of(who))
    # A 204 has no body; the header only keeps strict OpenAPI checkers from tripping on it.
    return web.Response(status=204, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/drops", list_drops)
    app.router.add_post("/api/drops", create_drop)
    app.router.add_get(r"/api/drops/{id:\d+}", get_drop)
    app.router.add_get(r"/api/drops/{id:\d+}/stats", drop_stats)
    app.router.add_put(r"/api/drops/{id:\d+}", update_drop)
    app.router.add_delete(r"/api/drops/{id:\d+}", delete_drop)
