"""A raffle drop's routes: enter the draw, read my entry, read the draw's public record.

Entering is a customer write through the drop's actor (rate-limited like reserve; the user must
exist here, as for every write that makes a row under them). The record is public: anyone may
recompute the draw from it (docs/fair-drops.md, "Raffle").
"""

from __future__ import annotations

from aiohttp import web

from sneakerd.raffle_service import RaffleService
from sneakerd.raffle_views import entry_view, raffle_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, response_schema
from sneakerd.web.jsonio import json_response
from sneakerd.web.routes.common import BEARER, errors_doc, path_id, principal
from sneakerd.web.schemas.replies import EntryEnvelope, MyEntryEnvelope, RaffleEnvelope


def _raffles(request: web.Request) -> RaffleService:
    return RaffleService(request.app[keys.SERVICE])


@docs(
    tags=["raffle"],
    summary="Enter a raffle drop's draw (once per user)",
    description="Entries are taken from entriesOpenAt until entriesCloseAt. No body.",
    security=BEARER,
    responses=errors_doc(
        401,
        404,
        429,
        409,
        conflicts="already_entered, entries_not_open, entries_closed, not_a_raffle",
    ),
)
@response_schema(EntryEnvelope, 201)
async def enter(request: web.Request) -> web.Response:
    app = request.app
    who = principal(request)
    await app[keys.RESERVE_LIMIT].check(who.user_id)
    await app[keys.KNOWN_USERS].username(who.user_id)  # a token of an unknown user: 401
    entry = await _raffles(request).enter(who.user_id, path_id(request))
    return json_response({"entry": entry_view(entry)}, 201)


@docs(
    tags=["raffle"],
    summary="My entry into a raffle drop's draw, with its result once drawn",
    description="`entry` is null if you have not entered.",
    security=BEARER,
    responses=errors_doc(401, 404, 409, conflicts="not_a_raffle"),
)
@response_schema(MyEntryEnvelope, 200)
async def my_entry(request: web.Request) -> web.Response:
    who = principal(request)
    entry, record = await _raffles(request).my_entry(who.user_id, path_id(request))
    return json_response({"entry": None if entry is None else entry_view(entry, record)})


@docs(
    tags=["raffle"],
    summary="A raffle drop's draw, as anyone can check it",
    description="The seed's commitment (from entriesOpenAt), the entries' digest (from "
    "entriesCloseAt), the seed and the winners in draw order (after the draw), and every "
    "entry id, ascending. The draw order is the entries sorted by hex HMAC-SHA256(seed, "
    "str(entryId)); the first initialStock win, and an unclaimed win passes to the next.",
    responses=errors_doc(404, 409, conflicts="not_a_raffle"),
)
@response_schema(RaffleEnvelope, 200)
async def raffle_record(request: web.Request) -> web.Response:
    record = await _raffles(request).record(path_id(request))
    now = request.app[keys.CLOCK].now_ms()
    return json_response({"raffle": raffle_view(record, now)})


def add_routes(app: web.Application) -> None:
    app.router.add_post(r"/api/drops/{id:\d+}/entries", enter)
    app.router.add_get(r"/api/drops/{id:\d+}/entries/me", my_entry)
    app.router.add_get(r"/api/drops/{id:\d+}/raffle", raffle_record)
