"""The red team's attacks, rerun against real server processes, each reported held or broken.

Each attack is what an independent review did to sneakerd, as an attacker would do it: from
outside, over loopback sockets, with no access to the process. `tests/e2e/test_attacks.py` runs
them in CI on both stores; `python -m tests.e2e.attacks [--db URL]` runs them by hand and prints
the report.

Two servers are used: `open_server` with every limit off (so the crowd of item 1 can register
and reserve freely), and `tight_server` with small limits and timeouts, so that the slow-client,
look-alike-email and per-address attacks finish in seconds. Attackers and bystanders use
different loopback source addresses (127.0.0.2, 127.0.0.3, ...), which the kernel routes like
any other client, so a per-address limit that punishes the attacker must still serve the
bystander.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import stat
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.serverproc import Server

TIGHT_ENV = {
    "RATE_LIMIT_AUTH": "4",
    "HEADER_TIMEOUT": "1",
    "KEEPALIVE_TIMEOUT": "2",
    "MAX_CONNECTIONS_PER_IP": "20",
    "MAX_WEBSOCKETS_PER_IP": "5",
}
"""The tight server's settings: small enough that every attack ends within seconds."""

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Verdict:
    item: str
    attack: str
    held: bool
    detail: str


Attack = Callable[["Arena"], Awaitable[Verdict]]


@dataclass
class Arena:
    open_server: Server
    tight_server: Server
    http: aiohttp.ClientSession

    async def call(
        self,
        server: Server,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        source: str | None = None,
    ) -> tuple[int, Any, Any]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        session = self.http
        owned = None
        if source is not None:
            owned = session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(source, 0))
            )
        try:
            async with session.request(
                method, server.url + path, json=json, data=data, headers=h
            ) as resp:
                text = await resp.text()
                try:
                    body: Any = await resp.json(content_type=None) if text else None
                except ValueError:
                    body = text
                return resp.status, body, resp.headers
        finally:
            if owned is not None:
                await owned.close()

    async def register(self, server: Server, email: str | None = None) -> tuple[int, Any]:
        name = "a" + uuid.uuid4().hex[:10]
        status, body, _ = await self.call(
            server,
            "POST",
            "/api/users/register",
            json={"username": name, "email": email or f"{name}@example.com", "password": PASSWORD},
        )
        return status, body

    async def login(self, server: Server, email: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, body, _ = await self.call(
            server, "POST", "/api/users/login", json={"email": email, "password": password}
        )
        return status, body

    async def admin_drop(self, server: Server, **fields: Any) -> dict[str, Any]:
        name = "adm" + uuid.uuid4().hex[:8]
        server.admin_token_cli(f"{name}@example.com", name, PASSWORD)
        status, body = await self.login(server, f"{name}@example.com")
        assert status == 200, body
        payload = {"name": "drop " + name, "price": "100.00", "initialStock": 10, **fields}
        status, body, _ = await self.call(
            server, "POST", "/api/drops", token=body["token"], json=payload
        )
        assert status == 201, body
        return dict(body["drop"])


# -- item 1: one customer's keys fail a batch -------------------------------------------------


async def case_different_keys(arena: Arena) -> Verdict:
    server = arena.open_server
    drop = await arena.admin_drop(server, initialStock=2000, perUserLimit=3)
    shoppers = [
        body["token"]
        for _, body in await asyncio.gather(*(arena.register(server) for _ in range(200)))
    ]
    failed_others = 0
    for round_no in range(3):
        _, attacker = await arena.register(server)
        key = f"z{round_no}{uuid.uuid4().hex[:6]}"

        def reserve(token: str, idem: str | None = None) -> Awaitable[tuple[int, Any, Any]]:
            headers = {"Idempotency-Key": idem} if idem else None
            return arena.call(
                server,
                "POST",
                "/api/reservations",
                token=token,
                json={"dropId": drop["id"]},
                headers=headers,
            )

        # The pair goes in the middle of the crowd, so that both land in one busy batch.
        answers = await asyncio.gather(
            *(reserve(token) for token in shoppers[:100]),
            reserve(attacker["token"], key.lower()),
            reserve(attacker["token"], key.upper()),
            *(reserve(token) for token in shoppers[100:]),
        )
        others = answers[:100] + answers[102:]
        failed_others += sum(1 for status, _, _ in others if status != 201)
    return Verdict(
        "1",
        "keys zN/ZN beside 200 shoppers, 3 rounds",
        failed_others == 0,
        f"{failed_others} of 600 other shoppers were not served",
    )


# -- item 3: look-alike emails ---------------------------------------------------------------


async def lookalike_emails(arena: Arena) -> Verdict:
    server = arena.open_server
    local = "alice" + uuid.uuid4().hex[:6]
    real = f"{local}@example.com"
    status, _ = await arena.register(server, real)
    assert status == 201
    problems = []
    for fake in (
        real + "\u200b",
        "\u00e1" + real[1:],  # álice...
        real.replace("@", "\u00e9@", 1),  # ...é@
        "\u00c1" + real[1:].upper(),  # ÁLICE...
    ):
        status, body = await arena.login(server, fake)
        if status == 200 and body["user"]["email"] == real:
            problems.append(f"{fake!r} logged in as {real}")
    dav = "d\u00e1vid" + uuid.uuid4().hex[:6]
    plain = dav.replace("\u00e1", "a")
    first, _ = await arena.register(server, f"{dav}@example.com")
    second, _ = await arena.register(server, f"{plain}@example.com")
    if (first, second) != (201, 201):
        problems.append(f"registering d\u00e1vid then david gave {first}, {second}")
    status, _ = await arena.login(server, f"{plain}@example.com" + "\u200b")
    if status != 422:
        problems.append(f"an email with a zero-width space answered {status}, not 422")
    return Verdict(
        "3", "look-alike emails log in or block accounts", not problems, "; ".join(problems) or "-"
    )


async def lookalike_rate_limit(arena: Arena) -> Verdict:
    """RATE_LIMIT_AUTH=4 on the tight server, per account: spellings that are the same account
    (case, fullwidth letters) share one bucket, from five different client addresses."""
    server = arena.tight_server
    local = "bob" + uuid.uuid4().hex[:6]
    real = f"{local}@example.com"
    status, _, _ = await arena.call(
        server,
        "POST",
        "/api/users/register",
        json={"username": local, "email": real, "password": PASSWORD},
        source="127.0.0.9",
    )
    assert status == 201, status
    # Each is the same account once NFKC-normalised and case-folded; lower() alone tells the
    # fullwidth letters apart, which gave each spelling a bucket of its own.
    wide = {c: chr(ord(c) - ord("a") + 0xFF41) for c in "abcdefghijklmnopqrstuvwxyz"}
    spellings = [
        "\uff22" + real[1:],  # fullwidth capital B
        "\uff42" + real[1:],  # fullwidth small b
        real[0] + wide[real[1]] + real[2:],
        real[:2] + wide[real[2]] + real[3:],
        real,
    ]
    statuses = []
    for n, spelling in enumerate(spellings):
        status, _, _ = await arena.call(
            server,
            "POST",
            "/api/users/login",
            json={"email": spelling, "password": "wrong-password-123"},
            source=f"127.0.1.{n + 1}",
        )
        statuses.append(status)
    return Verdict(
        "3",
        "look-alike spellings dodge the per-account login limit",
        429 in statuses,
        f"answers to 5 wrong passwords under 5 spellings: {statuses}",
    )


# -- item 4: slow clients --------------------------------------------------------------------


async def _open(server: Server, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def half_sent_heads(arena: Arena) -> Verdict:
    server = arena.tight_server
    links = [await _open(server, "127.0.0.2") for _ in range(10)]
    for _, writer in links:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        await writer.drain()
    closed = await asyncio.gather(*(_closed_within(r, 4.0) for r, _ in links))
    for _, writer in links:
        writer.close()
    return Verdict(
        "4",
        "half-sent request heads held open",
        all(closed),
        f"{sum(closed)} of {len(links)} closed within 4 s (HEADER_TIMEOUT=1)",
    )


async def idle_keepalive(arena: Arena) -> Verdict:
    server = arena.tight_server
    reader, writer = await _open(server, "127.0.0.2")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    closed = await _closed_within(reader, 6.0)
    writer.close()
    return Verdict(
        "4", "idle keep-alive held open", closed, f"closed within 6 s: {closed} (KEEPALIVE=2)"
    )


async def connections_per_address(arena: Arena) -> Verdict:
    """40 kept-alive connections from one address against a cap of 20: each asks once and
    stays open; the ones past the cap must be refused, and a bystander still served."""
    server = arena.tight_server
    links, answers = [], []
    for _ in range(40):
        try:
            reader, writer = await _open(server, "127.0.0.4")
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(3):
                line = await reader.readline()
            answers.append(int(line.split()[1]) if line else 0)
            links.append(writer)
        except (OSError, TimeoutError, ValueError, IndexError):
            answers.append(0)
    status, _, _ = await arena.call(server, "GET", "/healthz", source="127.0.0.5")
    for writer in links:
        writer.close()
    served = answers.count(200)
    return Verdict(
        "4",
        "one address keeps 40 connections open (cap 20)",
        served <= 20 and status == 200,
        f"{served} served, {answers.count(429)} refused with 429, "
        f"{answers.count(0)} cut; a bystander's request answered {status}",
    )


async def forwarded_for_is_not_trusted(arena: Arena) -> Verdict:
    """X-Forwarded-For from a peer that is not a trusted proxy must not choose the bucket."""
    server = arena.tight_server
    statuses = []
    for n in range(6):
        status, _, _ = await arena.call(
            server,
            "POST",
            "/api/users/login",
            json={"email": f"nobody{n}{uuid.uuid4().hex[:4]}@example.com", "password": "x" * 8},
            headers={"X-Forwarded-For": f"10.9.9.{n}"},
            source="127.0.0.6",
        )
        statuses.append(status)
    return Verdict(
        "4",
        "a forged X-Forwarded-For buys a fresh per-IP bucket",
        429 in statuses,
        f"6 logins from one address with 6 forged X-Forwarded-For: {statuses}",
    )


# -- item 8: transport edges -----------------------------------------------------------------


async def _raw(server: Server, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(payload)
    await writer.drain()
    try:
        async with asyncio.timeout(5):
            data = await reader.read(65536)
    finally:
        writer.close()
    return data


async def transport_edges(arena: Arena) -> Verdict:
    server = arena.open_server
    problems = []
    status, body, headers = await arena.call(
        server,
        "POST",
        "/api/users/login",
        data=b"this is not gzip",
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    if status >= 500 or not isinstance(body, dict) or "error" not in body:
        problems.append(f"a bad gzip body answered {status} {str(body)[:60]!r}")
    status, body, headers = await arena.call(
        server,
        "POST",
        "/api/users/login",
        data=gzip.compress(b'{"email": 1}'),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    if status >= 500:
        problems.append(f"a good gzip body answered {status}")
    for path in ("/api/drops/" + "9" * 5000, "/api/reservations/" + "1" * 4400):
        status, body, headers = await arena.call(server, "GET", path)
        if status >= 500 or not isinstance(body, dict):
            problems.append(f"a {len(path)}-character id answered {status}")
    for raw in (b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"):
        answer = await _raw(server, raw)
        head, _, rest = answer.partition(b"\r\n\r\n")
        if b" 500 " in head.split(b"\r\n")[0] or b'"error"' not in rest:
            problems.append(f"{raw[:12]!r} answered {head[:40]!r} {rest[:40]!r}")
    _, _, headers = await arena.call(server, "GET", "/healthz")
    server_header = headers.get("Server", "")
    if "python" in server_header.lower() or "aiohttp" in server_header.lower():
        problems.append(f"Server: {server_header}")
    return Verdict(
        "8", "transport edges answer 500 or plain text", not problems, "; ".join(problems) or "-"
    )


# -- item 11: headers, files, WebSockets -----------------------------------------------------


async def security_headers(arena: Arena) -> Verdict:
    server = arena.open_server
    problems = []
    _, _, headers = await arena.call(server, "GET", "/api/drops")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("GET /api/drops lacks nosniff")
    local = "c" + uuid.uuid4().hex[:8]
    _status, _, headers = await arena.call(
        server,
        "POST",
        "/api/users/register",
        json={"username": local, "email": f"{local}@example.com", "password": PASSWORD},
    )
    if "no-store" not in headers.get("Cache-Control", ""):
        problems.append("register lacks Cache-Control: no-store")
    _, _, headers = await arena.call(
        server,
        "POST",
        "/api/users/login",
        json={"email": f"{local}@example.com", "password": PASSWORD},
    )
    if "no-store" not in headers.get("Cache-Control", ""):
        problems.append("login lacks Cache-Control: no-store")
    if server.db_url.startswith("sqlite:///"):
        path = Path(server.db_url[len("sqlite:///") :])
        if not path.is_absolute():
            path = server.cwd / path
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(f"the SQLite file is mode {mode:o}")
    return Verdict(
        "11",
        "missing security headers, readable database",
        not problems,
        "; ".join(problems) or "-",
    )


async def websocket_ping_flood(arena: Arena) -> Verdict:
    server = arena.open_server
    drop = await arena.admin_drop(server)
    async with arena.http.ws_connect(
        f"{server.url}/api/drops/{drop['id']}/ws", autoping=False
    ) as ws:
        sent = 0
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            for _ in range(2000):
                await ws.ping()
                sent += 1
        pongs = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.PONG:
                        pongs += 1
        code = ws.close_code
    return Verdict(
        "11",
        "WebSocket ping frames escape the flood limit",
        code == 1008,
        f"{sent} pings sent, {pongs} pongs, closed with {code}",
    )


async def websockets_per_address(arena: Arena) -> Verdict:
    server = arena.tight_server
    drop = await arena.admin_drop(server)
    url = f"{server.url}/api/drops/{drop['id']}/ws"
    attacker = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.7", 0)))
    bystander = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.8", 0)))
    sockets, refused = [], []
    try:
        for _ in range(10):
            try:
                sockets.append(await attacker.ws_connect(url))
            except aiohttp.WSServerHandshakeError as exc:
                refused.append(exc.status)
        mine = await bystander.ws_connect(url)
        served = (await mine.receive_json(timeout=5))["type"] == "snapshot"
        await mine.close()
    finally:
        for ws in sockets:
            await ws.close()
        await attacker.close()
        await bystander.close()
    return Verdict(
        "11",
        "one address opens 10 WebSockets (cap 5)",
        len(sockets) <= 5 and set(refused) <= {429} and served,
        f"{len(sockets)} accepted, refused with {sorted(set(refused))}, bystander served: {served}",
    )


ATTACKS: tuple[Attack, ...] = (
    case_different_keys,
    lookalike_emails,
    lookalike_rate_limit,
    half_sent_heads,
    idle_keepalive,
    connections_per_address,
    forwarded_for_is_not_trusted,
    transport_edges,
    security_headers,
    websocket_ping_flood,
    websockets_per_address,
)


async def run_all(open_server: Server, tight_server: Server) -> list[Verdict]:
    verdicts = []
    async with aiohttp.ClientSession() as http:
        arena = Arena(open_server, tight_server, http)
        for attack in ATTACKS:
            try:
                verdicts.append(await attack(arena))
            except Exception as exc:  # an attack that crashes is reported, not hidden
                verdicts.append(
                    Verdict("?", attack.__name__, False, f"{type(exc).__name__}: {exc}")
                )
    return verdicts


def report(verdicts: list[Verdict]) -> str:
    lines = [f"{'item':<5} {'verdict':<8} attack: detail"]
    for v in verdicts:
        lines.append(f"{v.item:<5} {'held' if v.held else 'BROKEN':<8} {v.attack}: {v.detail}")
    held = sum(v.held for v in verdicts)
    lines.append(f"{held} held, {len(verdicts) - held} broken")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Rerun the red team's attacks on loopback.")
    parser.add_argument("--db", help="a mysql:// server URL with a database name (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        url = args.db or f"sqlite:///{cwd / 'open.db'}"
        tight_url = f"sqlite:///{cwd / 'tight.db'}"
        os.umask(0o022)
        open_server = Server(url, {}, cwd).start()
        tight_server = Server(tight_url, dict(TIGHT_ENV), cwd).start()
        try:
            verdicts = asyncio.run(run_all(open_server, tight_server))
        finally:
            open_server.stop()
            tight_server.stop()
    print(report(verdicts))
    return 0 if all(v.held for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
