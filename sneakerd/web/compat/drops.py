"""/compat/api/drops: list (numbered, searched), one drop with its latest purchases, its
stats, and the admin's create, change and delete through `DropService` (so the drop's actor
decides every write, and drop writes stay admin-only: 403)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sneakerd.domain.audit import user_actor
from sneakerd.domain.commands import UpdateDrop
from sneakerd.domain.model import Drop, DropInfo
from sneakerd.web import keys
from sneakerd.web.compat.bodies import DROP_CHANGE, NEW_DROP, cleaned
from sneakerd.web.compat.envelope import listed, ok, paging
from sneakerd.web.compat.views import drop_view, stats_view
from sneakerd.web.jsonio import read_object
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import admin, path_id

LATEST = 3
"""Purchases shown with a drop, newest first, as the original did."""
MAX_SEARCH = 100


async def _views(request: web.Request, drops: list[Drop]) -> list[dict[str, Any]]:
    app = request.app
    latest = await app[keys.STORE].latest_purchases([d.id for d in drops], LATEST)
    now = app[keys.CLOCK].now_ms()
    return [drop_view(d, now, latest.get(d.id, [])) for d in drops]


async def list_drops(request: web.Request) -> web.Response:
    asked = paging(request)
    search = request.query.get("search", "").strip()[:MAX_SEARCH] or None
    found = await request.app[keys.STORE].drops_numbered(
        offset=asked.offset, limit=asked.limit, q=search
    )
    return listed("drops", await _views(request, found.items), found, asked)


async def _drop(request: web.Request, drop_id: int) -> Drop:
    drop = await request.app[keys.STORE].get_drop(drop_id)
    if drop is None:
        raise ApiError(404, "not_found", "Drop not found")
    return drop


async def get_drop(request: web.Request) -> web.Response:
    drop = await _drop(request, path_id(request))
    (view,) = await _views(request, [drop])
    return ok({"drop": view})


async def drop_stats(request: web.Request) -> web.Response:
    stats = await request.app[keys.SERVICE].drop_stats(path_id(request))
    return ok({"stats": stats_view(stats, request.app[keys.CLOCK].now_ms())})


async def create_drop(request: web.Request) -> web.Response:
    who = admin(request)
    data = NEW_DROP.load(cleaned(await read_object(request)))
    now = request.app[keys.CLOCK].now_ms()
    info = DropInfo(
        name=data["name"],
        price=data["price"],
        brand=data.get("brand"),
        description=data.get("description"),
        image_url=data.get("image_url"),
        per_user_limit=data.get("per_user_limit", 1),
        holds_per_user=data.get("holds_per_user", 3),
        starts_at=data.get("drop_start_time", now),
        ends_at=data.get("drop_end_time"),
    )
    units = data.get("initial_stock", data.get("stock"))
    drop = await request.app[keys.SERVICE].create_drop(info, units, user_actor(who.user_id))
    (view,) = await _views(request, [drop])
    return ok({"drop": view}, status=201, message="Drop created successfully")


async def update_drop(request: web.Request) -> web.Response:
    who = admin(request)
    drop_id = path_id(request)
    data = DROP_CHANGE.load(cleaned(await read_object(request)))
    clear = frozenset(
        name
        for name, key in (
            ("brand", "brand"),
            ("description", "description"),
            ("image_url", "image_url"),
            ("ends_at", "drop_end_time"),
        )
        if key in data and data[key] is None
    )
    update = UpdateDrop(
        name=data.get("name"),
        price=data.get("price"),
        brand=data.get("brand"),
        description=data.get("description"),
        image_url=data.get("image_url"),
        per_user_limit=data.get("per_user_limit"),
        holds_per_user=data.get("holds_per_user"),
        starts_at=data.get("drop_start_time"),
        ends_at=data.get("drop_end_time"),
        clear=clear,
        initial_stock=data.get("initial_stock"),
        available=data.get("stock"),
        actor=user_actor(who.user_id),
    )
    drop = await request.app[keys.SERVICE].update_drop(drop_id, update)
    (view,) = await _views(request, [drop])
    return ok({"drop": view}, message="Drop updated successfully")


async def delete_drop(request: web.Request) -> web.Response:
    who = admin(request)
    await request.app[keys.SERVICE].delete_drop(path_id(request), user_actor(who.user_id))
    return ok(message="Drop deleted successfully")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/drops", list_drops)
    app.router.add_post(f"{prefix}/drops", create_drop)
    app.router.add_get(rf"{prefix}/drops/{{id:\d+}}", get_drop)
    app.router.add_get(rf"{prefix}/drops/{{id:\d+}}/stats", drop_stats)
    app.router.add_put(rf"{prefix}/drops/{{id:\d+}}", update_drop)
    app.router.add_delete(rf"{prefix}/drops/{{id:\d+}}", delete_drop)
