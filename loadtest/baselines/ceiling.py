"""The ceiling: aiohttp + uvloop that verifies the JWT (pyjwt), parses the body (orjson) and
answers 201 with a reservation-shaped orjson body, storing nothing. sneakerd cannot beat this by
much; how close it gets says what its durability and bookkeeping cost.

    python -m loadtest.baselines.ceiling --port P   (JWT_SECRET from the environment)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from aiohttp import web

from loadtest.baselines.common import drop_id_of, iso, json, parser, problem, serve, user_id

HOLD = timedelta(seconds=60)


def build(secret: str) -> web.Application:
    ids = itertools.count(1)

    async def reserve(request: web.Request) -> web.Response:
        who = user_id(request, secret)
        if who is None:
            return problem(401, "unauthorized", "The token is invalid or has expired")
        drop_id = drop_id_of(await request.read())
        if drop_id is None:
            return problem(422, "validation_error", "dropId must be a positive integer")
        now = datetime.now(UTC)
        reservation = {
            "id": next(ids),
            "dropId": drop_id,
            "userId": who,
            "status": "active",
            "expiresAt": iso(now + HOLD),
            "createdAt": iso(now),
        }
        return json(201, {"reservation": reservation})

    app = web.Application()
    app.router.add_post("/api/reservations", reserve)
    return app


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    serve(build(args.secret), args.host, args.port)


if __name__ == "__main__":
    main()
