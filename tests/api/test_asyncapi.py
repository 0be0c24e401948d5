"""The AsyncAPI document of the WebSocket, checked against what a real server sends.

Every message type the hub can encode has a message in the document, and the frames a watcher
really receives (snapshot, stockUpdate, purchaseCompleted, dropUpdated, pong, error) each
validate against their message's payload schema.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator

from sneakerd.web.asyncapi import ASYNCAPI_JSON, CHANNEL
from tests.api.conftest import Api


async def document(api: Api) -> dict[str, Any]:
    status, body, _ = await api.call("GET", ASYNCAPI_JSON)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def check(doc: dict[str, Any], frame: dict[str, Any]) -> None:
    kind = frame["type"]
    assert kind in doc["components"]["messages"], kind
    root = {"$ref": f"#/components/messages/{kind}/payload", "components": doc["components"]}
    Draft7Validator(root).validate(frame)


async def test_the_document_names_every_message(api: Api) -> None:
    doc = await document(api)
    assert doc["asyncapi"] == "2.6.0"
    channel = doc["channels"][CHANNEL]
    sent = {ref["$ref"].rsplit("/", 1)[-1] for ref in channel["subscribe"]["message"]["oneOf"]}
    assert sent == {
        "snapshot",
        "stockUpdate",
        "reservationExpired",
        "purchaseCompleted",
        "dropUpdated",
        "dropDeleted",
        "pong",
        "error",
    }
    assert channel["publish"]["message"]["$ref"].endswith("/ping")
    Draft7Validator.check_schema(doc["components"]["schemas"]["Drop"])


async def test_real_frames_match_their_schemas(api: Api) -> None:
    doc = await document(api)
    admin = await api.admin()
    drop = await api.drop(admin, initialStock=3)
    _, token = await api.register()
    url = api.server.url.replace("http", "ws") + f"/api/drops/{drop['id']}/ws"
    seen: list[dict[str, Any]] = []
    async with api.http.ws_connect(url) as ws:

        async def until(kind: str) -> None:
            while True:
                frame = await ws.receive_json(timeout=10)
                seen.append(frame)
                if frame["type"] == kind:
                    return

        await until("snapshot")
        status, body, _ = await api.call(
            "POST", "/api/reservations", token=token, json={"dropId": drop["id"]}
        )
        assert status == 201, body
        await until("stockUpdate")
        status, body, _ = await api.call(
            "POST",
            "/api/purchases",
            token=token,
            json={"reservationId": body["reservation"]["id"]},
        )
        assert status == 201, body
        await until("purchaseCompleted")
        status, body, _ = await api.call(
            "PUT", f"/api/drops/{drop['id']}", token=admin, json={"description": "Re-stitched"}
        )
        assert status == 200, body
        await until("dropUpdated")
        await ws.send_json({"type": "ping"})
        await until("pong")
        await ws.send_str("hello")
        await until("error")
    kinds = {frame["type"] for frame in seen}
    assert {"snapshot", "stockUpdate", "purchaseCompleted", "dropUpdated", "pong", "error"} <= kinds
    for frame in seen:
        check(doc, frame)
    assert any(f["type"] == "snapshot" and f["drop"]["endsAt"] is None for f in seen)
