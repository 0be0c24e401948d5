"""Watchers see a pause: the snapshot carries `paused`, and a pause or unpause reaches them
as `dropUpdated` with the drop as committed, on both stores."""

from __future__ import annotations

from tests.ws.conftest import LiveFactory
from tests.ws.test_live import drain, next_json


async def test_the_snapshot_and_drop_updated_carry_paused(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop(initialStock=3, paused=True)
    path = f"/api/drops/{drop['id']}"
    async with live.http.ws_connect(live.url(path + "/ws")) as ws:
        snapshot = await next_json(ws)
        assert snapshot["type"] == "snapshot" and snapshot["drop"]["paused"] is True
        for paused in (False, True):
            status, body = await live.call("PUT", path, live.admin_token, {"paused": paused})
            assert status == 200 and body["drop"]["paused"] is paused
            updated = [m for m in await drain(ws) if m["type"] == "dropUpdated"]
            assert len(updated) == 1, updated
            assert updated[0]["drop"]["paused"] is paused
            assert updated[0]["drop"] == body["drop"] | {"status": updated[0]["drop"]["status"]}
    async with live.http.ws_connect(live.url(path + "/ws")) as ws:
        assert (await next_json(ws))["drop"]["paused"] is True
