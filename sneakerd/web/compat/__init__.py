"""The `/compat` mount: the original Node.js backend's REST API, for its existing front-end.

Every route of the original is served under `/compat/api/...` with its envelope
(`envelope`), snake_case objects (`views`), status codes (`failures`) and CORS (`cors`), and
`edge.compat_middleware` makes every answer under `/compat` one of its own. The routes
(`users`, `drops`, `holds`) hold no rule: they load bodies with sneakerd's own fields
(`bodies`), act through sneakerd's use cases (`DropService`, the native users routes' steps,
the reserve/purchase front with its rate limit and Idempotency-Key) and read through the
store, then translate the answer. docs/compat.md lists every route and how it maps.
"""

from __future__ import annotations

from aiohttp import web

from sneakerd.web.compat import drops, holds, users
from sneakerd.web.compat.edge import PREFIX, compat_middleware

API = PREFIX + "/api"


def add_routes(app: web.Application) -> None:
    """Add the mount's routes (after the native CORS setup: the mount answers its own)."""
    for module in (users, drops, holds):
        module.add_routes(app, API)


__all__ = ["PREFIX", "add_routes", "compat_middleware"]
