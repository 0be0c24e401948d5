"""A webhook receiver on loopback: an aiohttp server that records every delivery it gets.

Used by the webhook scenario and by the tests (the one receiver, like `servers` is the one
home of server processes). It checks each delivery's `Sneakerd-Signature` with the secret it
is given, and can refuse the first delivery of each event id with a 500, to drive retries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from loadtest.servers import HOST, free_port

HEADER = "Sneakerd-Signature"


def verify(secret: str, value: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """A receiver's check of `Sneakerd-Signature: t=<unix>,v1=<hex>` (docs/webhooks.md),
    written here from the documentation rather than imported, as a receiver would."""
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts.get("v1", ""))


@dataclass(frozen=True)
class Received:
    event_id: int
    type: str
    body: bytes
    signed: bool
    """The signature verified with the receiver's secret."""
    answered: int
    at: float
    node: str = ""
    """The `Sneakerd-Node` header: which node delivered it."""

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    secret: str = ""
    fail_first: bool = False
    """Answer 500 to the first delivery of each event id (and 200 to the rest)."""
    answer: Callable[[dict[str, Any]], int] | None = None
    """The status to answer an event with (after `fail_first`); 200 when None."""
    got: list[Received] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, HOST, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = bool(self.secret) and verify(
            self.secret, request.headers.get(HEADER, ""), body, now=int(time.time())
        )
        event = orjson.loads(body)
        event_id = int(event["id"])
        status = 200 if self.answer is None else self.answer(event)
        if self.fail_first and event_id not in self._seen:
            status = 500
        self._seen.add(event_id)
        node = request.headers.get("Sneakerd-Node", "")
        self.got.append(
            Received(event_id, str(event["type"]), body, signed, status, time.time(), node)
        )
        return web.Response(status=status, text="ok" if status == 200 else "try again")

    def delivered(self) -> dict[int, Received]:
        """Each event id's first delivery that was answered 200."""
        found: dict[int, Received] = {}
        for r in self.got:
            if r.answered == 200 and r.event_id not in found:
                found[r.event_id] = r
        return found

    def first_seen(self) -> list[int]:
        """Event ids in the order their first delivery arrived."""
        order: list[int] = []
        seen: set[int] = set()
        for r in self.got:
            if r.event_id not in seen:
                seen.add(r.event_id)
                order.append(r.event_id)
        return order


async def _serve_forever(port: int) -> None:
    """`python -m loadtest.receiver PORT`: answer 200 to every delivery, in a process of its
    own (so that receiving does not compete with the load generator); on SIGTERM print how
    many deliveries it got and exit."""
    import asyncio
    import signal
    import sys

    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    sys.stdout.write(f"{count}\n")


if __name__ == "__main__":
    import asyncio
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1])))
