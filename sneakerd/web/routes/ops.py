"""For operators and orchestrators: liveness, readiness, metrics."""

from __future__ import annotations

from aiohttp import web

from sneakerd import errors
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, response_schema
from sneakerd.web.jsonio import json_response
from sneakerd.web.problems import ApiError, respond
from sneakerd.web.routes.common import errors_doc
from sneakerd.web.schemas import HealthOut, ReadyOut


@docs(tags=["ops"], summary="Liveness: the process serves (says nothing of the database)")
@response_schema(HealthOut, 200)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "node": request.app[keys.SETTINGS].node_id})


@docs(
    tags=["ops"],
    summary="Readiness: the database answers and every live drop's actor has recovered",
    responses=errors_doc(),
)
@response_schema(ReadyOut, 200)
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    try:
        await app[keys.STORE].ping()
    except errors.Unavailable:
        return _not_ready("the database does not answer")
    if not app[keys.REGISTRY].recovered:
        return _not_ready("drop actors are still recovering")
    return json_response({"status": "ready", "node": app[keys.SETTINGS].node_id})


def _not_ready(why: str) -> web.Response:
    return respond(ApiError(503, "unavailable", why, headers={"Retry-After": "1"}))


@docs(
    tags=["ops"],
    summary="Prometheus metrics (text format); expose to ops networks only",
    produces=["text/plain"],
    responses={200: {"description": "Prometheus text format"}},
)
async def metrics(request: web.Request) -> web.StreamResponse:
    return await request.app[keys.METRICS].handler(request)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
