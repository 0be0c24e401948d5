"""The AsyncAPI 2.6 document of a drop's WebSocket (`/api/docs/asyncapi.json`).

OpenAPI describes requests and answers, not a socket's messages, so the WebSocket's messages
are described here: one channel, `/api/drops/{id}/ws`, on which the server publishes the
events `web/hub.py` encodes (and the `pong` and `error` answers of `routes/live.py`), and the
client may send `ping`. The `drop` inside `snapshot` and `dropUpdated` is the REST API's drop
schema, copied from the OpenAPI 3 document with its `nullable` spelled as JSON Schema
(`"type": ["string", "null"]`), so a frame can be checked with any JSON Schema validator.
docs/websocket.md says the same for people.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from sneakerd.web.openapi3 import OPENAPI_DOCUMENT

Json = dict[str, Any]
ASYNCAPI_JSON = "/api/docs/asyncapi.json"
ASYNCAPI_DOCUMENT = web.AppKey("asyncapi_document", dict[str, Any])
CHANNEL = "/api/drops/{id}/ws"

_INT = {"type": "integer"}
_COUNT = {"type": "integer", "minimum": 0}


def _message(name: str, summary: str, fields: Json, required: tuple[str, ...] = ()) -> Json:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["type", "dropId", "seq", *required],
            "properties": {
                "type": {"type": "string", "const": name},
                "dropId": {"type": "integer", "minimum": 1},
                "seq": {
                    "type": "integer",
                    "description": "The drop's version after the event; rises strictly on one "
                    "connection (pong and error repeat the last one).",
                },
                **fields,
            },
        },
    }


SERVER_MESSAGES: dict[str, Json] = {
    "snapshot": _message(
        "snapshot",
        "The whole drop: first on every connection, and instead of a backlog to a watcher "
        "that fell behind.",
        {"drop": {"$ref": "#/components/schemas/Drop"}},
        ("drop",),
    ),
    "stockUpdate": _message(
        "stockUpdate",
        "The counts changed (hold, cancel, expiry, purchase, restock); coalesced, the latest "
        "wins, at most one batch per drop per 50 ms.",
        {"newStock": _COUNT, "reserved": _COUNT, "sold": _COUNT},
        ("newStock", "reserved", "sold"),
    ),
    "reservationExpired": _message(
        "reservationExpired",
        "A hold lapsed and its unit returned.",
        {"reservationId": _INT},
        ("reservationId",),
    ),
    "purchaseCompleted": _message(
        "purchaseCompleted",
        "A purchase was committed.",
        {"purchaseId": _INT, "purchaser": {"type": "string", "description": "a username"}},
        ("purchaseId", "purchaser"),
    ),
    "dropUpdated": _message(
        "dropUpdated",
        "An admin changed the drop: the drop after the change.",
        {"drop": {"$ref": "#/components/schemas/Drop"}},
        ("drop",),
    ),
    "dropDeleted": _message(
        "dropDeleted", "An admin deleted the drop; the server then closes with 1000.", {}
    ),
    "pong": _message("pong", "The answer to a client's ping.", {}),
    "error": _message(
        "error",
        "The client sent a text message the server does not understand; the socket stays open.",
        {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "const": "bad_request"},
                    "message": {"type": "string"},
                },
            }
        },
        ("error",),
    ),
}
PING: Json = {
    "name": "ping",
    "title": "ping",
    "summary": 'The only client message: `{"type": "ping"}`, answered with `pong`.',
    "contentType": "application/json",
    "payload": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "const": "ping"}},
    },
}


def build(drop_schema: Json, nested: dict[str, Json] | None = None) -> Json:
    """The document, with `drop_schema` (the OpenAPI 3 `DropOut`) as its Drop and `nested`
    the OpenAPI 3 schemas it refers to (under the same names)."""
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "sneakerd live stock",
            "version": "1.0.0",
            "description": "A drop's WebSocket: connect without a token; the first message "
            "is a snapshot. Close codes: 1000 drop deleted, 1001 server going away, 1003 "
            "binary frame sent, 1008 more than 30 client messages in 10 s, 1009 a client "
            "message over 4096 bytes, 1013 a watcher stuck for 10 s. See docs/websocket.md.",
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "description": "One drop's events, in seq order. An unknown drop is a 404 "
                "and more than MAX_WEBSOCKETS_PER_IP sockets a 429, both before the upgrade.",
                "parameters": {
                    "id": {"description": "The drop's id", "schema": {"type": "integer"}}
                },
                "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
                "subscribe": {
                    "operationId": "receiveDropEvents",
                    "summary": "What the server sends",
                    "message": {
                        "oneOf": [
                            {"$ref": f"#/components/messages/{name}"} for name in SERVER_MESSAGES
                        ]
                    },
                },
                "publish": {
                    "operationId": "sendPing",
                    "summary": "What a client may send",
                    "message": {"$ref": "#/components/messages/ping"},
                },
            }
        },
        "components": {
            "messages": {**copy.deepcopy(SERVER_MESSAGES), "ping": copy.deepcopy(PING)},
            "schemas": {
                "Drop": json_schema(drop_schema),
                **{name: json_schema(schema) for name, schema in (nested or {}).items()},
            },
        },
    }


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` folded into `type`."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: json_schema(v) for k, v in schema.items() if k not in ("nullable", "example")}
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:  # a nullable reference (`allOf: [$ref]`): null, or what it refers to
            return {"anyOf": [{"type": "null"}, out]}
    return out


def referenced(schema: Any, components: dict[str, Any], found: dict[str, Any]) -> None:
    """Every component schema `schema` refers to, transitively, into `found`."""
    if isinstance(schema, list):
        for item in schema:
            referenced(item, components, found)
    elif isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMAS):
            name = ref[len(SCHEMAS) :]
            if name not in found and name in components:
                found[name] = components[name]
                referenced(components[name], components, found)
        for value in schema.values():
            referenced(value, components, found)


SCHEMAS = "#/components/schemas/"


def add_routes(app: web.Application) -> None:
    """Serve the document (after `openapi3.add_routes`, whose drop schema it borrows)."""
    components = app[OPENAPI_DOCUMENT]["components"]["schemas"]
    drop = components["DropOut"]
    nested: dict[str, Any] = {}
    referenced(drop, components, nested)
    app[ASYNCAPI_DOCUMENT] = build(drop, nested)

    async def document(request: web.Request) -> web.Response:
        return web.json_response(request.app[ASYNCAPI_DOCUMENT])

    app.router.add_get(ASYNCAPI_JSON, document)
