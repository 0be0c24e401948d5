"""What both reference servers share: argument parsing, bearer-token checks, JSON answers."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from aiohttp import web

DEFAULT_SECRET = "loadtest-secret-" + "k" * 40


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", default=os.environ.get("JWT_SECRET", DEFAULT_SECRET))
    return p


def problem(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def json(status: int, data: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def user_id(request: web.Request, secret: str) -> int | None:
    """The token's user id, as sneakerd checks it (HS256 only, every claim required)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "iat", "exp"]}
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def drop_id_of(body: bytes) -> int | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = data.get("dropId") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def ready(_: web.Request) -> web.Response:
    return json(200, {"status": "ok"})


def serve(app: web.Application, host: str, port: int) -> None:
    import uvloop

    app.router.add_get("/readyz", ready)
    app.router.add_get("/healthz", ready)
    uvloop.install()
    web.run_app(app, host=host, port=port, print=None, access_log=None)
