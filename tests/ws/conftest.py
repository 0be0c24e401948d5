"""A real sneakerd app listening on a free loopback port in this process, with real clients.

In-process (unlike tests/api's subprocess) so that a test can reach the hub and the store: to
publish a flood of events, to tune the slow-subscriber limits, or to break a commit for real.

`send_path` runs a test once per way the fan-out thread sends (`web/sendmany.py`): the C
extension's and the os.write fallback's. Without the extension built the C variant is skipped,
unless SNEAKERD_REQUIRE_SENDMANY=1 (as in CI), where it fails.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from sneakerd.clock import SystemClock
from sneakerd.config import Settings
from sneakerd.domain.model import Role
from sneakerd.passwords import hash_password_sync
from sneakerd.web import keys, sendmany
from sneakerd.web.app import create_app

SECRET = "ws-test-secret-" + "y" * 40


def c_send_path() -> sendmany.SendPath:
    """The C extension's path; a skip saying why without it, or a failure where CI built it."""
    if sendmany.C is not None:
        return sendmany.C
    reason = "the C extension sneakerd.web._sendmany is not built (a C compiler, then pip install)"
    if os.environ.get("SNEAKERD_REQUIRE_SENDMANY") == "1":
        pytest.fail(f"{reason} (SNEAKERD_REQUIRE_SENDMANY=1)")
    pytest.skip(reason)


@pytest.fixture(params=["c", "python"])
def send_path(request: pytest.FixtureRequest) -> sendmany.SendPath:
    return c_send_path() if request.param == "c" else sendmany.PYTHON


@dataclass
class Live:
    server: TestServer
    http: aiohttp.ClientSession
    admin_token: str

    @property
    def app(self) -> Any:
        return self.server.app

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def customer(self, name: str) -> str:
        async with self.http.post(
            self.url("/api/users/register"),
            json={
                "username": name,
                "email": f"{name}@example.com",
                "password": "hunter2hunter2",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["token"])

    async def call(
        self, method: str, path: str, token: str | None = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url(path), json=json, headers=headers) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            return r.status, body

    async def drop(self, **fields: Any) -> dict[str, Any]:
        status, body = await self.call(
            "POST",
            "/api/drops",
            self.admin_token,
            {"name": "Dunk", "price": "100", "initialStock": 10, **fields},
        )
        assert status == 201, body
        return dict(body["drop"])


LiveFactory = Callable[..., Awaitable[Live]]


@pytest.fixture
async def live_server(store_url: str) -> AsyncIterator[LiveFactory]:
    """`await live_server(**hub_options, **settings)` starts one; all stop after the test."""
    started: list[Live] = []

    async def start(
        *, outbox_limit: int = 256, stuck_seconds: float = 10.0, **settings: Any
    ) -> Live:
        config = Settings(
            database_url=store_url,
            jwt_secret=SECRET,
            bcrypt_rounds=4,
            rate_limit_auth=0,
            rate_limit_reserve=0,
            **settings,
        )
        app = create_app(config)
        app[keys.HUB].outbox_limit = outbox_limit
        app[keys.HUB].stuck_seconds = stuck_seconds
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        store = app[keys.STORE]
        name = f"admin{len(started)}"
        await store.create_user(
            name,
            f"{name}@example.com",
            hash_password_sync("hunter2hunter2", 4),
            Role.ADMIN,
            SystemClock().now_ms(),
        )
        http = aiohttp.ClientSession()
        async with http.post(
            str(server.make_url("/api/users/login")),
            json={"email": f"{name}@example.com", "password": "hunter2hunter2"},
        ) as resp:
            token = (await resp.json())["token"]
        live = Live(server, http, token)
        started.append(live)
        return live

    yield start
    for live in started:
        await live.http.close()
        await live.server.close()


class RawWatcher:
    """A WebSocket client over a bare socket with a tiny receive buffer, which reads only when
    told to: the slow phone on a bad network that the hub must not wait for."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def frames(self, timeout: float) -> list[tuple[int, bytes]]:
        """Read everything that arrives within `timeout`: (opcode, payload) pairs."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buffer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        out = []
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    break
                length, start = struct.unpack(">H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10:
                    break
                length, start = struct.unpack(">Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < start + length:
                break
            out.append((opcode, self.buffer[start : start + length]))
            self.buffer = self.buffer[start + length :]
        return out

    def close(self) -> None:
        self.sock.close()
