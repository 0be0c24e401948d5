"""The waiting room: join a drop's queue, read my ticket (the drop's actor decides both)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sneakerd.views import ticket_view
from sneakerd.web import keys
from sneakerd.web.admission import AdmissionTokens
from sneakerd.web.apidoc import docs, response_schema
from sneakerd.web.jsonio import json_response
from sneakerd.web.queue_watch import QueueWatch
from sneakerd.web.routes.common import BEARER, errors_doc, path_id, principal
from sneakerd.web.schemas.queue import QueueTicketEnvelope

ADMISSIONS = web.AppKey("admissions", AdmissionTokens)
QUEUE_WATCH = web.AppKey("queue_watch", QueueWatch)
ADMISSION_HEADER = {
    "in": "header",
    "name": "Admission-Token",
    "type": "string",
    "required": False,
    "description": "On a drop with a waiting room: the admissionToken of my admitted ticket.",
}


@docs(
    tags=["queue"],
    summary="Join a drop's waiting room (again: the same ticket)",
    description="Everyone who joins before startsAt is placed in a random order at startsAt; "
    "later arrivals queue behind, in order. Once admitted the ticket carries an admissionToken: "
    "reserve with header `Admission-Token: <token>` before admissionExpiresAt.",
    security=BEARER,
    responses=errors_doc(401, 404, 429, 409, conflicts="drop_ended"),
)
@response_schema(QueueTicketEnvelope, 200)
async def join(request: web.Request) -> web.Response:
    app = request.app
    who = principal(request)
    drop_id = path_id(request)
    await app[keys.RESERVE_LIMIT].check(who.user_id)
    await app[keys.KNOWN_USERS].username(who.user_id)  # a ticket row needs its user
    ticket = await app[keys.SERVICE].join_queue(who.user_id, drop_id)
    return json_response({"ticket": ticket_view(ticket, app[ADMISSIONS].for_ticket(ticket))})


@docs(
    tags=["queue"],
    summary="My ticket in a drop's waiting room",
    description="404 not_found if I have not joined (or the drop has no waiting room).",
    security=BEARER,
    responses=errors_doc(401, 404),
)
@response_schema(QueueTicketEnvelope, 200)
async def my_ticket(request: web.Request) -> web.Response:
    app = request.app
    who = principal(request)
    ticket = await app[keys.SERVICE].queue_ticket(who.user_id, path_id(request))
    return json_response({"ticket": ticket_view(ticket, app[ADMISSIONS].for_ticket(ticket))})


def add_routes(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    assert settings.jwt_secret is not None  # create_app refuses settings without one
    app[ADMISSIONS] = AdmissionTokens(settings.jwt_secret)
    app.cleanup_ctx.append(_watch_positions)
    app.router.add_post(r"/api/drops/{id:\d+}/queue", join)
    app.router.add_get(r"/api/drops/{id:\d+}/queue/me", my_ticket)


async def _watch_positions(app: web.Application) -> AsyncIterator[None]:
    """The WebSocket's queue positions: started once the registry is up, stopped before it."""
    watch = app[QUEUE_WATCH] = QueueWatch(
        app[keys.TOKENS], app[keys.REGISTRY], app[keys.KNOWN_USERS].username
    )
    watch.start()
    try:
        yield
    finally:
        await watch.stop()
