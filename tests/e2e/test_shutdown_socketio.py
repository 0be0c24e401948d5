"""SIGTERM with Socket.IO clients connected (the original's front-end, over both transports):
each is told at once that the server is going, rather than left to find out from a dead
connection, and the process exits without waiting out its shutdown timeout for them."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.serverproc import Server
from tests.ws.sio import TRANSPORTS, Listener


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], TRANSPORTS])
async def test_sigterm_tells_every_socketio_client_it_is_going(
    store_url: str, tmp_path: Path, transports: list[str]
) -> None:
    server = Server(store_url, {}, tmp_path).start()
    try:
        told: dict[str, float] = {}
        listeners = []
        for transport in transports:
            listener = await Listener().connect(server.url, transport)

            def gone(*_: object, transport: str = transport) -> None:
                told[transport] = time.monotonic()

            listener.client.on("disconnect", gone)
            listeners.append(listener)
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.proc.wait, 20)
        exited = time.monotonic() - started
        for _ in range(100):  # the clients' own tasks hear the close
            if len(told) == len(transports):
                break
            await asyncio.sleep(0.05)
        for listener in listeners:
            await listener.client.disconnect()
    finally:
        out = server.stop()
    assert "Traceback" not in out, out
    assert code == 0, out
    # A server that left its Socket.IO sessions open waited out its 5-s grace (and more: 10 s).
    assert exited < 4, (exited, out)
    assert sorted(told) == sorted(transports), told
    assert all(at - started < 5 for at in told.values()), {
        t: at - started for t, at in told.items()
    }
