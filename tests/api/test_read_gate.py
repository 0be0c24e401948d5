"""The read gate on a real connection: a client that was just refused from committed state (a
sold-out drop) has its next request held, unread, while a buyer's write is in flight, and
answered as before once the write is done; a client that was not refused is never held.

The app runs in this process behind `GuardedRunner` (what `sneakerd serve` uses) on SQLite, so
the test can hold a write "in flight" itself (`DropService.other_work`) for as long as it likes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sneakerd.domain.model import Role
from sneakerd.web import keys
from sneakerd.web.read_gate import ReadGate
from sneakerd.web.transport import MAX_HELD_BYTES, GuardedHandler
from tests.api.test_transport import HEAD_END, Reply, parse, start_guarded


@dataclass
class Shop:
    app: web.Application
    port: int
    runner: web.AppRunner

    async def until_waiting(self, count: int, within: float = 5.0) -> None:
        """Until the gate holds `count` connections (they reach the server in their time)."""
        for _ in range(int(within / 0.01)):
            if self.gate.waiting == count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the gate holds {self.gate.waiting}, not {count}")

    @property
    def gate(self) -> ReadGate:
        return self.app[keys.READ_GATE]

    async def connect(self) -> Connection:
        return Connection(*await asyncio.open_connection("127.0.0.1", self.port))

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Reply:
        connection = await self.connect()
        try:
            return await connection.call(method, path, body, token)
        finally:
            connection.close()

    async def user(self, name: str, admin: bool = False) -> str:
        account = {"username": name, "email": f"{name}@example.com", "password": "hunter2hunter2"}
        created = await self.call("POST", "/api/users/register", account)
        assert created.status == 201, created.body
        if not admin:
            return str(created.json["token"])
        await self.app[keys.STORE].set_role(account["email"], Role.ADMIN)
        login = {"email": account["email"], "password": account["password"]}
        logged_in = await self.call("POST", "/api/users/login", login)
        assert logged_in.status == 200, logged_in.body
        return str(logged_in.json["token"])


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def send(self, method: str, path: str, body: Any = None, token: str = "") -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)

    async def reply(self, wait: float = 3.0) -> Reply:
        head = await asyncio.wait_for(self.reader.readuntil(HEAD_END), wait)
        reply = parse(head)
        reply.body = await self.reader.readexactly(int(reply.headers["content-length"]))
        return reply

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Reply:
        self.send(method, path, body, token)
        return await self.reply()

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.reader.read(1), seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def running_shop(tmp_path: Path, **changes: Any) -> AsyncIterator[Shop]:
    """The app behind `GuardedRunner` on a loopback port, on SQLite in `tmp_path`."""
    app, runner, port = await start_guarded(tmp_path / "gate.db", **changes)
    try:
        yield Shop(app, port, runner)
    finally:
        await runner.cleanup()


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    async with running_shop(tmp_path) as running:
        yield running


async def sold_out_drop(shop: Shop) -> int:
    admin = await shop.user("gateadmin", admin=True)
    created = await shop.call(
        "POST", "/api/drops", {"name": "Gate", "price": "10.00", "initialStock": 1}, admin
    )
    assert created.status == 201, created.body
    drop_id = int(created.json["drop"]["id"])
    buyer = await shop.user("first")
    first = await shop.call("POST", "/api/reservations", {"dropId": drop_id}, buyer)
    assert first.status == 201, first.body
    return drop_id


async def refused_crowd(shop: Shop) -> tuple[int, str, Connection]:
    """A sold-out drop, a shopper's token, and a connection whose last answer was a refusal."""
    drop_id = await sold_out_drop(shop)
    token = await shop.user("crowd")
    crowd = await shop.connect()
    refused = await crowd.call("POST", "/api/reservations", {"dropId": drop_id}, token)
    assert refused.status == 409, refused.body
    return drop_id, token, crowd


async def test_a_refused_clients_next_request_waits_while_a_write_is_in_flight(
    shop: Shop,
) -> None:
    drop_id = await sold_out_drop(shop)
    token = await shop.user("crowd")
    crowd = await shop.connect()
    refused = await crowd.call("POST", "/api/reservations", {"dropId": drop_id}, token)
    assert refused.status == 409, refused.body
    shop.gate.longest_ms = 60_000  # only the write's end lets it in here

    service = shop.app[keys.SERVICE]
    with service.other_work():  # a buyer's hold is in flight
        crowd.send("POST", "/api/reservations", {"dropId": drop_id}, token)
        assert await crowd.nothing_within(0.3)
        assert shop.gate.waiting == 1
        # Anybody else goes on meanwhile: a read, and a client that was not refused.
        seen = await shop.call("GET", f"/api/drops/{drop_id}")
        assert seen.status == 200 and seen.json["drop"]["stock"] == 0
        assert shop.gate.waiting == 1
    again = await crowd.reply()  # the write ended: the same answer as before, unchanged
    assert again.status == 409 and again.json == refused.json
    assert shop.gate.waiting == 0

    # With nothing in flight a refused client is not held at all.
    assert (await crowd.call("POST", "/api/reservations", {"dropId": drop_id}, token)).status == 409
    assert shop.gate.holds == 1
    crowd.close()


async def test_a_held_client_is_let_in_after_the_longest_wait_even_if_another_left(
    shop: Shop,
) -> None:
    drop_id = await sold_out_drop(shop)
    token = await shop.user("crowd")
    patient, leaving = await shop.connect(), await shop.connect()
    for connection in (patient, leaving):
        refused = await connection.call("POST", "/api/reservations", {"dropId": drop_id}, token)
        assert refused.status == 409, refused.body
    shop.gate.longest_ms = 200

    with shop.app[keys.SERVICE].other_work():  # a write that outlasts the longest wait
        for connection in (patient, leaving):
            connection.send("POST", "/api/reservations", {"dropId": drop_id}, token)
        await shop.until_waiting(2)
        # One leaves. Its socket is not read while it is held, so the server learns of it
        # when the wait ends: its request is then parsed and its answer goes nowhere.
        leaving.close()
        late = await patient.reply(wait=5)
        assert late.status == 409
        assert shop.gate.waiting == 0
    # Nothing of the one that left is kept, and the server goes on.
    assert (await shop.call("GET", f"/api/drops/{drop_id}")).status == 200
    assert (await patient.call("GET", f"/api/drops/{drop_id}")).status == 200
    patient.close()


async def test_a_request_that_came_in_pieces_while_held_is_parsed_whole(shop: Shop) -> None:
    drop_id, token, crowd = await refused_crowd(shop)
    shop.gate.longest_ms = 60_000
    body = json.dumps({"dropId": drop_id}).encode()
    whole = (
        f"POST /api/reservations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with shop.app[keys.SERVICE].other_work():
        for start in range(0, len(whole), 7):  # a slow client's bytes, a few at a time
            crowd.writer.write(whole[start : start + 7])
            await crowd.writer.drain()
            await asyncio.sleep(0.002)
        crowd.send("GET", f"/api/drops/{drop_id}")  # and a second request right behind it
        assert await crowd.nothing_within(0.2)
    first, second = await crowd.reply(), await crowd.reply()
    assert first.status == 409 and second.status == 200
    crowd.close()


async def test_a_held_client_is_answered_when_the_server_shuts_down(shop: Shop) -> None:
    drop_id, token, crowd = await refused_crowd(shop)
    shop.gate.longest_ms = 60_000
    with shop.app[keys.SERVICE].other_work():
        crowd.send("POST", "/api/reservations", {"dropId": drop_id}, token)
        await shop.until_waiting(1)
        stopping = asyncio.create_task(shop.runner.cleanup())  # what `sneakerd serve` does
        assert (await crowd.reply()).status == 409
    await stopping
    crowd.close()


async def test_a_client_that_went_on_to_other_requests_is_not_held(shop: Shop) -> None:
    drop_id = await sold_out_drop(shop)
    token = await shop.user("crowd")
    client = await shop.connect()
    assert (
        await client.call("POST", "/api/reservations", {"dropId": drop_id}, token)
    ).status == 409
    assert (await client.call("GET", f"/api/drops/{drop_id}")).status == 200
    with shop.app[keys.SERVICE].other_work():
        assert (await client.call("GET", f"/api/drops/{drop_id}")).status == 200
    assert shop.gate.holds == 0
    client.close()


async def test_many_pipelined_requests_behind_a_refusal_are_all_answered_in_order(
    shop: Shop,
) -> None:
    """aiohttp pauses and resumes reading itself for a long pipeline (and asks to parse again
    with an empty read); held or not, every request is answered once, in order."""
    drop_id, token, crowd = await refused_crowd(shop)
    count = 80
    with shop.app[keys.SERVICE].other_work():
        for n in range(count):
            if n % 2:
                crowd.send("GET", f"/api/drops/{drop_id}")
            else:
                crowd.send("POST", "/api/reservations", {"dropId": drop_id}, token)
        await crowd.writer.drain()
        replies = [await crowd.reply(wait=10) for _ in range(count)]
    assert [r.status for r in replies] == [409 if n % 2 == 0 else 200 for n in range(count)]
    assert shop.gate.waiting == 0
    crowd.close()


async def test_a_held_connection_that_keeps_sending_goes_in_past_the_cap(shop: Shop) -> None:
    """Held bytes are kept in memory only up to `MAX_HELD_BYTES`: a connection whose transport
    reads on meanwhile (aiohttp's own flow control can resume it) and sends past that goes in
    at once, write in flight or not, and every request it sent is answered, in order."""
    drop_id, token, crowd = await refused_crowd(shop)
    shop.gate.longest_ms = 60_000  # only the cap can let it in while the write is in flight
    count = MAX_HELD_BYTES // 40 + 200  # small GETs, past the cap in all
    with shop.app[keys.SERVICE].other_work():
        crowd.send("POST", "/api/reservations", {"dropId": drop_id}, token)
        await shop.until_waiting(1)
        held = next(iter(shop.gate._held))
        assert isinstance(held, GuardedHandler) and held.transport is not None
        held.transport.resume_reading()  # as aiohttp's flow control may
        for _ in range(count):
            crowd.send("GET", f"/api/drops/{drop_id}")
        await crowd.writer.drain()
        first = await crowd.reply(wait=5)
        assert first.status == 409
        # (Its answer, a refusal again, may hold what is left of the pipeline until the end
        # of the write, as for any refused connection.)
    replies = [await crowd.reply(wait=10) for _ in range(count)]
    assert all(r.status == 200 for r in replies)
    crowd.close()
