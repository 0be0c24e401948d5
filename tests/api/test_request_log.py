"""Request ids and the access log, read from a real server process's stderr.

A sane `X-Request-Id` is echoed, an insane or missing one is replaced by a fresh 32-hex-digit id, on
every answer (errors, the WebSocket upgrade and the transport's own refusals included), and the
access line of each request carries its method, path, status, duration, id and client address.
LOG_FORMAT=json makes every stderr line a JSON object; LOG_LEVEL=WARNING writes no access
line. An unhandled error's log record names the request id the client was given.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from loadtest.servers import QUIET_ENV, free_port, stop_process, wait_ready
from sneakerd import logs
from sneakerd.config import Settings
from sneakerd.web.app import create_app
from tests.serverproc import JWT_SECRET

HEX_ID = re.compile(r"[0-9a-f]{32}")
ClientMaker = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class LoggedServer:
    """`sneakerd serve` with its stderr and stdout each in a file of their own."""

    def __init__(self, folder: Path, db_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        self.stderr_path, self.stdout_path = folder / "stderr.log", folder / "stdout.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DB_"))}
        environ.update({**QUIET_ENV, "JWT_SECRET": JWT_SECRET, "DATABASE_URL": db_url, **env})
        self._err, self._out = self.stderr_path.open("w"), self.stdout_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sneakerd", "serve", "--port", str(self.port)],
            cwd=folder,
            env=environ,
            stdout=self._out,
            stderr=self._err,
            text=True,
        )
        wait_ready(
            self.proc,
            self.url + "/readyz",
            name="sneakerd serve",
            timeout=30,
            output=self.stderr,
            stop=self.stop,
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> str:
        if self.proc.poll() is None:
            stop_process(self.proc)
        self._err.close()
        self._out.close()
        return self.stderr()


@pytest.fixture
def start_logged(store_url: str, tmp_path: Path) -> Iterator[Callable[..., LoggedServer]]:
    started: list[LoggedServer] = []

    def start(**env: str) -> LoggedServer:
        server = LoggedServer(tmp_path, store_url, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as resp:
        await resp.read()
        return resp.status, resp.headers.get("X-Request-Id", "")


async def raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_request_ids_are_echoed_and_in_the_access_line(
    start_logged: Callable[..., LoggedServer],
) -> None:
    server = start_logged(LOG_LEVEL="INFO")
    assert await fetch(server.url + "/healthz", {"X-Request-Id": "abc.DEF-1_2"}) == (
        200,
        "abc.DEF-1_2",
    )
    insane = ["has space", "x" * 129, "semi;colon", "", "a/b"]
    made = [await fetch(server.url + "/healthz", {"X-Request-Id": bad}) for bad in insane]
    made.append(await fetch(server.url + "/api/drops"))
    assert all(s == 200 and HEX_ID.fullmatch(rid) for s, rid in made), made
    assert len({rid for _, rid in made}) == len(made)
    for path, status in (
        ("/api/users/profile", 401),
        ("/nowhere", 404),
        ("/api/drops?limit=0", 422),
        ("/api/drops/999999/ws", 404),
    ):
        assert await fetch(server.url + path, {"X-Request-Id": f"e{status}"}) == (
            status,
            f"e{status}",
        ), path
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.url + "/api/drops",
            data=b"x" * 100,
            headers={"X-Request-Id": "p401", "Content-Type": "text/plain"},
        ) as resp,
    ):
        assert (resp.status, resp.headers["X-Request-Id"]) == (401, "p401")
    refused = await raw(server.port, b"GET / HTTP/1.1 junk\r\n\r\n")
    assert refused.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), refused[:100]
    refused_id = re.search(rb"X-Request-Id: ([0-9a-f]{32})", refused, re.IGNORECASE)
    assert refused_id, refused
    err = server.stop()
    line = next(x for x in err.splitlines() if "[abc.DEF-1_2]" in x)
    assert re.search(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO sneakerd\.access \[abc\.DEF-1_2\]: "
        r'127\.0\.0\.1 "GET /healthz" 200 \d+\.\d{3}ms$',
        line,
    ), line
    for _, rid in made:
        assert f"[{rid}]" in err, rid
    assert re.search(r'\[e401\]: 127\.0\.0\.1 "GET /api/users/profile" 401 ', err), err
    assert re.search(r'\[e404\]: 127\.0\.0\.1 "GET /nowhere" 404 ', err), err
    assert re.search(r'\[e404\]: 127\.0\.0\.1 "GET /api/drops/999999/ws" 404 ', err), err
    malformed = [x for x in err.splitlines() if "malformed request" in x]
    assert malformed and f"[{refused_id[1].decode()}]" in malformed[0], malformed
    assert "Traceback" not in err, err


async def test_json_logs_are_one_object_a_line(
    start_logged: Callable[..., LoggedServer],
) -> None:
    server = start_logged(LOG_LEVEL="INFO", LOG_FORMAT="json")
    await fetch(server.url + "/api/drops", {"X-Request-Id": "json-1"})
    await fetch(server.url + "/api/drops/999999", {"X-Request-Id": "json-2"})
    await raw(server.port, b"GET / HTTP/1.1 junk\r\n\r\n")
    lines = server.stop().splitlines()
    entries = [json.loads(line) for line in lines]  # every stderr line, or this raises
    assert all(isinstance(e, dict) for e in entries)
    access = {e["request_id"]: e for e in entries if e["logger"] == "sneakerd.access"}
    first = access["json-1"]
    assert (first["method"], first["path"], first["status"], first["client"]) == (
        "GET",
        "/api/drops",
        200,
        "127.0.0.1",
    )
    assert isinstance(first["duration_ms"], float) and first["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"]), first
    assert access["json-2"]["status"] == 404
    assert any("malformed request" in e["message"] for e in entries), entries


async def test_warning_level_writes_no_access_line(
    start_logged: Callable[..., LoggedServer],
) -> None:
    server = start_logged(LOG_LEVEL="WARNING")
    assert (await fetch(server.url + "/healthz", {"X-Request-Id": "quiet"}))[1] == "quiet"
    assert "quiet" not in server.stop()


async def test_an_unhandled_error_is_logged_with_its_request_id(
    aiohttp_client: ClientMaker, tmp_path: Path
) -> None:
    settings = Settings(jwt_secret="s" * 40, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/boom", boom)
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("INFO", "json", stream)
    try:
        client = await aiohttp_client(app)
        resp = await client.get("/boom", headers={"X-Request-Id": "bug-42"})
        body = await resp.json()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert (resp.status, body["error"]["code"]) == (500, "internal_error")
    assert resp.headers["X-Request-Id"] == "bug-42"
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["request_id"] == "bug-42", entries
    assert "RuntimeError: a bug" in errors[0]["exception"]
    assert any(
        e["logger"] == "sneakerd.access" and e["request_id"] == "bug-42" and e["status"] == 500
        for e in entries
    ), entries


async def test_a_websocket_is_one_access_line_whatever_it_carries(
    start_logged: Callable[..., LoggedServer], tmp_path: Path
) -> None:
    server = start_logged(LOG_LEVEL="INFO")
    token = await _admin_token(server, tmp_path)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/api/drops",
            json={"name": "ws log", "price": "10.00", "initialStock": 5},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 201
            drop_id = (await resp.json())["drop"]["id"]
        url = server.url.replace("http", "ws") + f"/api/drops/{drop_id}/ws"
        async with http.ws_connect(url, headers={"X-Request-Id": "ws-1"}) as ws:
            upgrade = ws._response  # aiohttp keeps the upgrade's answer only here
            assert upgrade.headers["X-Request-Id"] == "ws-1"
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
            for _ in range(5):
                await ws.send_json({"type": "ping"})
                assert (await ws.receive_json(timeout=5))["type"] == "pong"
    err = server.stop()
    lines = [line for line in err.splitlines() if "[ws-1]" in line]
    assert len(lines) == 1, lines
    assert re.search(rf'"GET /api/drops/{drop_id}/ws" 101 \d+\.\d{{3}}ms$', lines[0]), lines


async def _admin_token(server: LoggedServer, folder: Path) -> str:
    email, name, password = "ops@example.com", "ops_admin", "hunter2hunter2"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DB_"))}
    env.update({**QUIET_ENV, "JWT_SECRET": JWT_SECRET})
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "sneakerd",
            "users",
            "create-admin",
            "--email",
            email,
            "--username",
            name,
            "--db",
            server.db_url,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.url + "/api/users/login", json={"email": email, "password": password}
        ) as resp,
    ):
        assert resp.status == 200
        return str((await resp.json())["token"])


async def test_a_browser_may_send_and_read_the_request_id(start_api: Callable[..., Any]) -> None:
    shop = "https://shop.example.com"
    api = start_api(CLIENT_URL=shop)
    status, _, headers = await api.call(
        "OPTIONS",
        "/api/drops",
        headers={
            "Origin": shop,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-request-id",
        },
    )
    assert 200 <= status < 300 and "x-request-id" in headers["Access-Control-Allow-Headers"].lower()
    status, _, headers = await api.call(
        "GET", "/api/drops", headers={"Origin": shop, "X-Request-Id": "from-the-shop"}
    )
    assert status == 200 and headers["X-Request-Id"] == "from-the-shop"
    assert "x-request-id" in headers["Access-Control-Expose-Headers"].lower(), dict(headers)
