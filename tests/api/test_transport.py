"""The transport edge: slow and hoarding clients, malformed HTTP, headers on every answer.

Most tests run the app in this process behind `GuardedRunner` (what `sneakerd serve` uses) on a
loopback port, with small timeouts, and talk to it over raw sockets; one runs the real
`sneakerd serve` to show that the settings reach it from the environment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sneakerd.config import Settings, parse_networks
from sneakerd.web.app import create_app
from sneakerd.web.transport import GuardedRunner
from tests.api.conftest import Api
from tests.api.helpers import assert_envelope
from tests.serverproc import Server

SECRET = "transport-test-secret-" + "z" * 40
HEAD_END = b"\r\n\r\n"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Guarded:
    port: int

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def exchange(self, data: bytes, wait: float = 3.0) -> Reply:
        """Send raw bytes on a fresh connection; the reply, read until the server closes."""
        reader, writer = await self.connect()
        try:
            writer.write(data)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), wait)
        finally:
            writer.close()
        return parse(raw)

    async def get(self, path: str, headers: str = "") -> Reply:
        return await self.exchange(
            f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode()
        )


def parse(raw: bytes) -> Reply:
    head, _, body = raw.partition(HEAD_END)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(lines[0].split()[1]), headers, body)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """One keep-alive response (Content-Length framed) from an open connection."""
    head = await asyncio.wait_for(reader.readuntil(HEAD_END), 3)
    reply = parse(head)
    reply.body = await reader.readexactly(int(reply.headers["content-length"]))
    return reply


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server closes the connection within `seconds` (what it sent is ignored)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass  # reset or broken pipe: closed too
    return True


StartGuarded = Callable[..., Awaitable[Guarded]]


async def start_guarded(
    database: Path, **changes: Any
) -> tuple[web.Application, web.AppRunner, int]:
    """The app behind `GuardedRunner` on a loopback port, on SQLite at `database`, with small
    costs and no rate limits: the app, its runner (to clean up) and the port."""
    settings = Settings(
        database_url=f"sqlite:///{database}",
        jwt_secret=SECRET,
        bcrypt_rounds=4,
        rate_limit_auth=0,
        rate_limit_reserve=0,
    ).replace(**changes)
    app = create_app(settings)
    runner = GuardedRunner(app, settings, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return app, runner, int(runner.addresses[0][1])


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[StartGuarded]:
    """`await guarded(**settings)`: the app behind `GuardedRunner` on a loopback port."""
    runners: list[web.AppRunner] = []

    async def start(**changes: Any) -> Guarded:
        _, runner, port = await start_guarded(tmp_path / f"db{len(runners)}.db", **changes)
        runners.append(runner)
        return Guarded(port)

    yield start
    for runner in runners:
        await runner.cleanup()


# --- item 4: slow clients ---------------------------------------------------------------------


async def test_a_connection_whose_head_never_completes_is_closed(guarded: StartGuarded) -> None:
    server = await guarded(header_timeout=0.3)
    silent_reader, silent = await server.connect()
    half_reader, half = await server.connect()
    half.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    started = time.monotonic()
    assert await closed_within(silent_reader, 2.0)
    assert await closed_within(half_reader, 2.0)
    assert time.monotonic() - started < 1.5
    silent.close()
    half.close()


async def test_a_trickled_head_is_closed_even_though_bytes_keep_coming(
    guarded: StartGuarded,
) -> None:
    server = await guarded(header_timeout=0.4)
    reader, writer = await server.connect()
    started = time.monotonic()
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 40:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
    except ConnectionError:
        pass
    assert await closed_within(reader, 1.0)
    assert time.monotonic() - started < 1.5
    writer.close()


async def test_the_head_deadline_applies_to_each_request_of_a_kept_alive_connection(
    guarded: StartGuarded,
) -> None:
    server = await guarded(header_timeout=0.3, keepalive_timeout=5.0)
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_reply(reader)).status == 200
    await asyncio.sleep(0.6)  # idle past the head deadline: keep-alive, still open
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_reply(reader)).status == 200
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # the next head stalls
    assert await closed_within(reader, 1.5)
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    guarded: StartGuarded,
) -> None:
    server = await guarded(header_timeout=5.0, keepalive_timeout=0.5)
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_reply(reader)).status == 200
    started = time.monotonic()
    assert await closed_within(reader, 3.0)
    assert time.monotonic() - started < 2.5
    writer.close()


async def test_connections_over_the_per_address_cap_get_a_json_429(
    guarded: StartGuarded,
) -> None:
    server = await guarded(max_connections_per_ip=3)
    held = [await server.connect() for _ in range(3)]
    await asyncio.sleep(0.05)
    refused = await server.get("/healthz")
    assert refused.status == 429, refused
    assert refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["connection"] == "close"
    held[0][1].close()
    await asyncio.sleep(0.1)
    assert (await server.get("/healthz")).status == 200
    for _, writer in held[1:]:
        writer.close()


async def test_a_trusted_proxys_connections_are_not_capped(guarded: StartGuarded) -> None:
    server = await guarded(
        max_connections_per_ip=2, trusted_proxies=parse_networks("T", "127.0.0.1")
    )
    held = [await server.connect() for _ in range(4)]
    await asyncio.sleep(0.05)
    assert (await server.get("/healthz")).status == 200
    for _, writer in held:
        writer.close()


def login(email: str, forwarded: str) -> bytes:
    body = json.dumps({"email": email, "password": "wrong-password"}).encode()
    return (
        f"POST /api/users/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"X-Forwarded-For: {forwarded}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


async def test_the_sign_in_limit_counts_the_client_a_trusted_proxy_names(
    guarded: StartGuarded,
) -> None:
    server = await guarded(rate_limit_auth=2, trusted_proxies=parse_networks("T", "127.0.0.1"))
    statuses = [
        (await server.exchange(login(f"a{i}@example.com", "198.51.100.1"))).status for i in range(3)
    ]
    assert statuses == [401, 401, 429]
    other = await server.exchange(login("b@example.com", "6.6.6.6, 198.51.100.2"))
    assert other.status == 401, other


async def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(
    guarded: StartGuarded,
) -> None:
    server = await guarded(rate_limit_auth=2)
    statuses = [
        (await server.exchange(login(f"c{i}@example.com", f"198.51.100.{i}"))).status
        for i in range(3)
    ]
    assert statuses == [401, 401, 429]


# --- item 8: transport edges ------------------------------------------------------------------


def post_login(body: bytes, extra: str) -> bytes:
    return (
        "POST /api/users/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    "request_bytes",
    [
        post_login(b"this is not gzip", "Content-Encoding: gzip\r\n"),
        post_login(b"\x78\x9cnot deflate", "Content-Encoding: deflate\r\n"),
        post_login(b"\x1f\x8b\x08\x00" + b"\xff" * 40, "Content-Encoding: gzip\r\n"),
    ],
    ids=["not-gzip", "not-deflate", "corrupt-gzip"],
)
async def test_a_body_that_cannot_be_decoded_is_a_json_400(
    guarded: StartGuarded, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = await guarded()
    with caplog.at_level(logging.INFO):
        reply = await server.exchange(request_bytes)
    assert reply.status == 400, reply
    assert_envelope(reply.status, reply.json)
    assert reply.json["error"]["code"] == "bad_request"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "path",
    [
        "/api/drops/{n}",
        "/api/drops/{n}/ws",
        "/api/purchases/drop/{n}",
        "/drops/{n}",
    ],
)
async def test_an_absurdly_long_id_is_not_found(guarded: StartGuarded, path: str) -> None:
    server = await guarded()
    reply = await server.get(path.format(n="9" * 5000))
    assert reply.status == 404, reply
    assert reply.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1 junk\r\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"POST /api/users/login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    ],
    ids=["request-line", "header", "version", "tls", "chunk-size", "huge-header"],
)
async def test_malformed_http_is_a_json_400_logged_in_one_line(
    guarded: StartGuarded, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = await guarded()
    with caplog.at_level(logging.DEBUG):
        reply = await server.exchange(request_bytes)
    assert reply.status == 400, reply
    assert reply.headers["content-type"].startswith("application/json")
    assert_envelope(reply.status, reply.json)
    assert reply.headers["server"] == "sneakerd"
    assert reply.headers["x-content-type-options"] == "nosniff"
    logged = [r for r in caplog.records if r.name.startswith(("aiohttp", "sneakerd"))]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].exc_info is None and "\n" not in logged[0].getMessage()


# --- item 11: headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/drops", "/api/nothing-here", "/api/users/profile", "/"]
)
async def test_every_answer_names_no_python_and_says_nosniff(
    guarded: StartGuarded, path: str
) -> None:
    server = await guarded()
    reply = await server.get(path)
    assert reply.headers["server"] == "sneakerd", reply.headers
    assert reply.headers["x-content-type-options"] == "nosniff"


async def test_sign_in_answers_are_never_stored(guarded: StartGuarded) -> None:
    server = await guarded()
    register = json.dumps(
        {"username": "nostore", "email": "nostore@example.com", "password": "hunter2hunter2"}
    ).encode()
    created = await server.exchange(
        b"POST /api/users/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(register)}\r\nConnection: close\r\n\r\n".encode()
        + register
    )
    assert created.status == 201 and "token" in created.json
    logged_in = await server.exchange(
        post_login(b'{"email": "nostore@example.com", "password": "hunter2hunter2"}', "")
    )
    assert logged_in.status == 200 and "token" in logged_in.json
    refused = await server.exchange(post_login(b'{"email": "nostore@example.com"}', ""))
    for reply in (created, logged_in, refused):
        assert reply.headers["cache-control"] == "no-store", reply.headers


# --- the real `sneakerd serve` ----------------------------------------------------------------


async def test_serve_applies_the_transport_settings_from_the_environment(
    start_api: Callable[..., Api],
) -> None:
    api = start_api(HEADER_TIMEOUT="0.3", MAX_CONNECTIONS_PER_IP="40")
    status, _, headers = await api.call("GET", "/healthz")
    assert status == 200
    assert headers["Server"] == "sneakerd"
    assert headers["X-Content-Type-Options"] == "nosniff"
    reader, writer = await asyncio.open_connection("127.0.0.1", api.server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    assert await closed_within(reader, 2.0)
    writer.close()
    bad = parse(await _raw(api.server, b"GET / HTTP/1.1 junk\r\n\r\n"))
    assert bad.status == 400 and bad.json["error"]["code"] == "bad_request"
    output = api.server.stop()
    assert "Traceback" not in output, output


async def _raw(server: Server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    raw = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    return raw
