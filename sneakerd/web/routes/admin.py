"""The operators' reads: who bought a drop (with emails, as JSON or CSV) and the audit log.

Admins only. The buyer list is the one place the API shows an email beside a purchase: the
public list (`GET /api/purchases/drop/{id}`) names usernames only. Its CSV form streams every
row, a page at a time, so a drop of any size is exported without holding it in memory.
"""

from __future__ import annotations

import logging

from aiohttp import web

from sneakerd import buyers_csv, errors
from sneakerd.views import audit_view, buyer_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, querystring_schema, response_schema
from sneakerd.web.jsonio import json_response
from sneakerd.web.paging import ListKind, list_scope, page_body, start_after
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import BEARER, admin, errors_doc, path_id
from sneakerd.web.schemas.admin import (
    AUDIT_QUERY,
    BUYER_QUERY,
    AuditList,
    AuditQuery,
    BuyerList,
    BuyerQuery,
)

log = logging.getLogger(__name__)

CSV = "text/csv"


def wants_csv(request: web.Request) -> bool:
    """True when the client asks for CSV (`Accept: text/csv`) rather than JSON."""
    return any(
        part.split(";")[0].strip().lower() == CSV
        for part in request.headers.get("Accept", "").split(",")
    )


@docs(
    tags=["admin"],
    summary="Who bought a drop, with each buyer's id, username and email (admin)",
    description="Newest first, a page at a time (follow `nextCursor`). With `Accept: text/csv` "
    "the answer is every purchase of the drop as CSV (one header row; `limit` and `cursor` "
    "are ignored), streamed; cells a spreadsheet would take for a formula (starting with "
    "= + - @) are prefixed with `'`.",
    security=BEARER,
    responses=errors_doc(401, 403, 404, 422),
)
@querystring_schema(BuyerQuery)
@response_schema(BuyerList, 200)
async def drop_buyers(request: web.Request) -> web.StreamResponse:
    admin(request)
    drop_id = path_id(request)
    query = BUYER_QUERY.load(dict(request.query))
    store = request.app[keys.STORE]
    if await store.get_drop(drop_id) is None:
        raise ApiError(404, "not_found", "No such drop")
    if wants_csv(request):
        return await _stream_csv(request, drop_id)
    scope = list_scope(query, drop_id)
    page = await store.drop_buyers(drop_id, limit=query["limit"], after=start_after(query, scope))
    views = [buyer_view(b) for b in page.items]
    return json_response(page_body("purchases", views, ListKind.BUYERS, page.next, scope))


async def _stream_csv(request: web.Request, drop_id: int) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="drop-{drop_id}-purchases.csv"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(buyers_csv.header().encode())
    try:
        async for buyers in buyers_csv.every_page(request.app[keys.STORE], drop_id):
            await response.write(buyers_csv.buyer_lines(buyers).encode())
    except errors.Unavailable:
        # The status line is gone already, so no error answer can follow. The connection is
        # cut instead of ending the body, so that the client sees a failed download rather
        # than a file that merely looks shorter.
        log.warning("drop %s: the CSV export lost the database midway; connection cut", drop_id)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


@docs(
    tags=["admin"],
    summary="The audit log: every admin and CLI write to a drop, newest first (admin)",
    description="Each entry names who (`user:<id>` or `cli`), the action (create, update, "
    "pause, unpause, delete, restock) and the drop before and after. `dropId` keeps one "
    "drop's entries.",
    security=BEARER,
    responses=errors_doc(401, 403, 422),
)
@querystring_schema(AuditQuery)
@response_schema(AuditList, 200)
async def audit_log(request: web.Request) -> web.Response:
    admin(request)
    query = AUDIT_QUERY.load(dict(request.query))
    page = await request.app[keys.STORE].audit_entries(
        drop_id=query.get("drop_id"),
        limit=query["limit"],
        after=start_after(query, scope := list_scope(query)),
    )
    views = [audit_view(r) for r in page.items]
    return json_response(page_body("entries", views, ListKind.AUDIT, page.next, scope))


def add_routes(app: web.Application) -> None:
    app.router.add_get(r"/api/admin/drops/{id:\d+}/purchases", drop_buyers)
    app.router.add_get("/api/admin/audit", audit_log)
