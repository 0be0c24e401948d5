"""`sio_fanout`: N Socket.IO clients (python-socketio, websocket transport) on one server while
R reservations are made as fast as the clients can send them.

Measures what the Socket.IO feed promises: (1) coalescing: how many `stockUpdate`s each client
got for R stock changes (at most one per drop per 50 ms, so far fewer than R when R is large),
(2) completeness: every client got every `reservationCreated` (one per 201), and (3) delivery
lag: from the last 201 to the moment the last client saw the final stock. Also the server's
CPU seconds over the burst.

    python -m loadtest.sio_fanout --clients 200 --reserves 300 [--store sqlite|mysql]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
import socketio

from loadtest.servers import Database, raise_nofile, sneakerd_server, workdir
from loadtest.users import insert_users, mint


class Client:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.stock: list[tuple[float, int]] = []
        self.created = 0
        self.sio.on("stockUpdate", self._stock)
        self.sio.on("reservationCreated", self._created)

    async def _stock(self, payload: dict[str, Any]) -> None:
        self.stock.append((time.monotonic(), int(payload["newStock"])))

    async def _created(self, _payload: dict[str, Any]) -> None:
        self.created += 1


async def run(url: str, tokens: list[str], admin: str, clients: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        body = {"name": "Fanout", "price": "100", "initialStock": len(tokens)}
        headers = {"Authorization": f"Bearer {admin}"}
        async with http.post(f"{url}/api/drops", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            drop_id = (await resp.json())["drop"]["id"]
        fleet = [Client() for _ in range(clients)]
        for start in range(0, clients, 50):
            await asyncio.gather(
                *(c.sio.connect(url, transports=["websocket"]) for c in fleet[start : start + 50])
            )
        await asyncio.sleep(0.5)

        async def reserve(token: str) -> int:
            async with http.post(
                f"{url}/api/reservations",
                json={"dropId": drop_id},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                await resp.read()
                return resp.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(reserve(t) for t in tokens))
        last_reply = time.monotonic()
        made = statuses.count(201)
        final = len(tokens) - made

        def done() -> bool:
            return all(c.stock and c.stock[-1][1] == final and c.created == made for c in fleet)

        for _ in range(600):  # up to 30 s
            if done():
                break
            await asyncio.sleep(0.05)
        seen = [next((t for t, s in c.stock if s == final), None) for c in fleet]
        for c in fleet:
            await c.sio.disconnect()
    updates = [len(c.stock) for c in fleet]
    lags = [t - last_reply for t in seen if t is not None]
    return {
        "clients": clients,
        "reserves_201": made,
        "burst_seconds": round(last_reply - started, 3),
        "stockUpdate_per_client_median": statistics.median(updates),
        "stockUpdate_per_client_max": max(updates),
        "clients_with_every_reservationCreated": sum(c.created == made for c in fleet),
        "clients_that_saw_final_stock": len(lags),
        "lag_after_last_201_ms_max": round(max(lags) * 1000, 1) if lags else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--reserves", type=int, default=300)
    parser.add_argument("--store", choices=["sqlite", "mysql"], default="sqlite")
    args = parser.parse_args()
    raise_nofile()
    with workdir() as wd:
        db = Database(args.store, wd)
        db.init()
        population = insert_users(db, args.reserves)
        server = sneakerd_server(db.url, wd).start()  # no rate or connection limits
        try:
            cpu = server.cpu_seconds()
            tokens = [mint(u) for u in population.customers]
            result = asyncio.run(
                run(server.url, tokens, mint(population.admin, "admin"), args.clients)
            )
            result["server_cpu_seconds"] = round(server.cpu_seconds() - cpu, 2)
        finally:
            server.stop()
            db.drop()
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
