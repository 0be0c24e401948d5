"""Setting the stage for an end-to-end test: an admin, a drop and a crowd of customers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.serverproc import Server

PASSWORD = "hunter2hunter2"


@dataclass
class Stage:
    admin: str
    drop_id: int
    tokens: list[str]


async def post(
    http: aiohttp.ClientSession, server: Server, path: str, body: Any, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(server.url + path, json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def stage(
    http: aiohttp.ClientSession, server: Server, *, users: int, prefix: str, **drop: Any
) -> Stage:
    """An admin (made with the CLI, as an operator would), one drop, `users` customers."""
    await asyncio.to_thread(
        server.admin_token_cli, f"{prefix}boss@example.com", f"{prefix}boss", PASSWORD
    )
    _, login = await post(
        http,
        server,
        "/api/users/login",
        {"email": f"{prefix}boss@example.com", "password": PASSWORD},
    )
    admin = login["token"]
    status, made = await post(
        http, server, "/api/drops", {"name": prefix.title(), "price": "90", **drop}, admin
    )
    assert status == 201, made
    tokens = []
    for i in range(users):
        status, reg = await post(
            http,
            server,
            "/api/users/register",
            {"username": f"{prefix}{i}", "email": f"{prefix}{i}@example.com", "password": PASSWORD},
        )
        assert status == 201, reg
        tokens.append(reg["token"])
    return Stage(admin, made["drop"]["id"], tokens)
