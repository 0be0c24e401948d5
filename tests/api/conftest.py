"""Fixtures for the REST tier: a real server per module and store, real HTTP clients.

- `server`: a running `sneakerd serve` (module-scoped, once on SQLite and once on MariaDB) with
  rate limits off, BCRYPT_ROUNDS=4, the default 60 s holds. Tests share it, so each test makes
  its own users and drops (the `api` helper gives unique names).
- `start_server(**env)`: a server of the test's own with extra environment (e.g.
  RESERVATION_DURATION=1000 or RATE_LIMIT_AUTH=3); stopped after the test.
- `http`: an aiohttp ClientSession; `api`: helpers over it (register, login, admin, drops).
- `start_api(**env)`: `start_server(**env)` with an `Api` over it.
- `admin_token`: one admin per module on `server` (the operator CLI is a process start, so the
  module's tests share it).

Shared assertions and calls (error envelope, drops, holds) are in helpers.py.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.serverproc import Server

_counter = itertools.count()


@pytest.fixture(scope="module")
def server(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(module_store_url, {}, tmp_path_factory.mktemp("srv")).start()
    yield srv
    srv.stop()


@pytest.fixture
def start_server(store_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(**env: str) -> Server:
        srv = Server(store_url, dict(env), tmp_path).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    """Thin helpers over raw HTTP; every call returns (status, json body, headers)."""

    def __init__(self, http: aiohttp.ClientSession, server: Server) -> None:
        self.http = http
        self.server = server

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, Any, Any]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, self.server.url + path, json=json, data=data, headers=h
        ) as resp:
            text = await resp.text()
            body = None
            if text:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = text
            return resp.status, body, resp.headers

    @staticmethod
    def unique(prefix: str = "u") -> str:
        return f"{prefix}{next(_counter)}_{uuid.uuid4().hex[:6]}"

    async def register(self, username: str | None = None) -> tuple[dict[str, Any], str]:
        username = username or self.unique()
        status, body, _ = await self.call(
            "POST",
            "/api/users/register",
            json={
                "username": username,
                "email": f"{username}@example.com",
                "password": "hunter2hunter2",
            },
        )
        assert status == 201, body
        return body["user"], body["token"]

    async def admin(self) -> str:
        name = self.unique("admin")
        self.server.admin_token_cli(f"{name}@example.com", name, "hunter2hunter2")
        status, body, _ = await self.call(
            "POST",
            "/api/users/login",
            json={"email": f"{name}@example.com", "password": "hunter2hunter2"},
        )
        assert status == 200, body
        return str(body["token"])

    async def drop(self, admin_token: str, **fields: Any) -> dict[str, Any]:
        payload = {"name": self.unique("drop"), "price": "199.99", "initialStock": 10, **fields}
        status, body, _ = await self.call("POST", "/api/drops", token=admin_token, json=payload)
        assert status == 201, body
        return dict(body["drop"])


@pytest.fixture
def api(http: aiohttp.ClientSession, server: Server) -> Api:
    return Api(http, server)


@pytest.fixture
def start_api(
    start_server: Callable[..., Server], http: aiohttp.ClientSession
) -> Callable[..., Api]:
    """`start_api(**env)`: a server of the test's own (see `start_server`) and an `Api` on it."""

    def start(**env: str) -> Api:
        return Api(http, start_server(**env))

    return start


@pytest.fixture(scope="module")
def admin_token(server: Server) -> str:
    """One admin per module (the operator CLI is a process start; tests share the admin)."""
    name = Api.unique("admin")
    server.admin_token_cli(f"{name}@example.com", name, "hunter2hunter2")
    request = urllib.request.Request(
        server.url + "/api/users/login",
        data=json.dumps({"email": f"{name}@example.com", "password": "hunter2hunter2"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["token"])


COMPAT_ORIGIN = "http://shop.example"
"""The original front-end's origin in the /compat tests (the servers' CLIENT_URL)."""


@pytest.fixture(scope="module")
def compat_server(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`server`, with CLIENT_URL set to `COMPAT_ORIGIN` (the /compat tests read CORS)."""
    env = {"CLIENT_URL": COMPAT_ORIGIN}
    srv = Server(module_store_url, env, tmp_path_factory.mktemp("compat")).start()
    yield srv
    srv.stop()


@pytest.fixture
def compat_api(http: aiohttp.ClientSession, compat_server: Server) -> Api:
    return Api(http, compat_server)
