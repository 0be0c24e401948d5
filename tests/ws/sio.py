"""A real python-socketio client that keeps every event it hears, for the Socket.IO tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import socketio

TRANSPORTS = ["websocket", "polling"]


class Listener:
    """One Socket.IO client (socketio.AsyncClient) over one transport, recording
    (event, payload) pairs in arrival order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.heard: list[tuple[str, Any]] = []
        self._news = asyncio.Event()
        self.client.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self.heard.append((event, args[0] if args else None))
        self._news.set()

    async def connect(self, base_url: str, transport: str, **options: Any) -> Listener:
        await self.client.connect(
            base_url, transports=[transport], socketio_path="socket.io", wait_timeout=10, **options
        )
        assert self.client.transport() == transport
        return self

    async def emit(self, event: str, *data: Any) -> None:
        await self.client.emit(event, data[0] if data else None)

    def named(self, event: str) -> list[Any]:
        return [payload for name, payload in self.heard if name == event]

    async def wait_for(
        self,
        event: str,
        check: Callable[[Any], bool] = lambda _: True,
        within: float = 10.0,
    ) -> Any:
        """The first payload of `event` that passes `check`, waiting up to `within` s."""
        deadline = time.monotonic() + within
        while True:
            for payload in self.named(event):
                if check(payload):
                    return payload
            left = deadline - time.monotonic()
            assert left > 0, f"no {event} passing the check; heard {self.heard}"
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), left)

    async def barrier(self) -> None:
        """Return once everything the server sent before a `pong` asked now has arrived
        (one socket's packets arrive in order)."""
        count = len(self.named("pong"))
        await self.emit("ping")
        await self.wait_for("pong", lambda _: len(self.named("pong")) > count)

    async def close(self) -> None:
        await self.client.disconnect()
