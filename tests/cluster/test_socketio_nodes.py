"""Socket.IO on two real nodes (one MariaDB, one Redis): a client on one node hears the acts
committed on the other, through the same events bus as the native WebSocket."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tests.cluster.conftest import Cluster
from tests.cluster.test_two_nodes import (
    LEASE,
    _drop,
    _owner_and_other,
    admin,
    call,
    register,
    reserve,
)
from tests.ws.sio import Listener


async def test_a_client_on_one_node_hears_a_hold_and_a_new_drop_committed_on_the_other(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(2, LEASE_TTL=str(LEASE))
    a, _ = cluster.nodes
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, a)
        drop_id = await _drop(http, a, boss, 5)
        owner, other = _owner_and_other(cluster, drop_id)
        listeners = [await Listener().connect(other.url, t) for t in ("websocket", "polling")]
        try:
            token = await register(http, owner)
            status, body = await reserve(http, owner, token, drop_id)
            assert status == 201, body
            status, profile = await call(http, owner, "GET", "/api/users/profile", token=token)
            assert status == 200
            for client in listeners:
                created = await client.wait_for("reservationCreated")
                assert (created["reservationId"], created["dropId"], created["userId"]) == (
                    body["reservation"]["id"],
                    drop_id,
                    profile["user"]["id"],
                )
                await client.wait_for(
                    "stockUpdate", lambda p: (p["dropId"], p["newStock"]) == (drop_id, 4)
                )
            # A drop created through the other node: its announcement crosses the bus too.
            fresh = await _drop(http, owner, boss, 3)
            for client in listeners:
                new = await client.wait_for("newDrop")
                assert (new["drop"]["id"], new["drop"]["stock"]) == (fresh, 3)
        finally:
            for client in listeners:
                await client.close()
