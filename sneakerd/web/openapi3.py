"""The OpenAPI 3.0 document (`/api/docs/openapi.json`), made from the Swagger 2 one.

aiohttp-apispec 2.2.3 writes Swagger 2 only, and the handlers' documentation is written for it,
so this module translates the finished Swagger 2 dictionary rather than describing every route
twice: definitions become `components/schemas`, a body parameter a `requestBody`, a parameter's
type its `schema`, a response's schema its `content`, `x-nullable` becomes `nullable`. It then
says what Swagger 2 could not:

- a real `http`/`bearer` security scheme (JWT), which Swagger UI's Authorize sends as
  `Authorization: Bearer <token>` (Swagger 2's apiKey made people paste the `Bearer ` prefix);
- one named example per error code under each status (the codes `apidoc.docs` kept on the
  handler), and the error envelope's `code` as an enum of `error_catalog.ERROR_CODES`;
- the `Retry-After` headers (required on 429 and 503) and `Idempotent-Replayed` on the success
  answers of the operations that take an `Idempotency-Key`;
- an `operationId` per operation (the handler's name), so generated clients read well;
- the WebSocket's upgrade (`GET /api/drops/{id}/ws`), whose messages are in the AsyncAPI
  document (`asyncapi.py`) and docs/websocket.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp_apispec.utils import get_path

from sneakerd.web.apidoc import error_codes
from sneakerd.web.error_catalog import ERROR_CODES, RETRY_AFTER_CODES, examples

Json = dict[str, Any]
OPENAPI_JSON = "/api/docs/openapi.json"
OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict[str, Any])
OPENAPI_VERSION = "3.0.3"
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The `token` from register or login (Swagger UI adds the `Bearer ` prefix).",
}
REPLAYED_HEADER = {
    "description": "`true` when this is the first answer to the same Idempotency-Key, sent "
    "again (nothing was done twice); absent otherwise.",
    "schema": {"type": "string", "enum": ["true"]},
}
_SCHEMA_KEYS = (
    "type",
    "format",
    "enum",
    "pattern",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "items",
    "x-nullable",
)
WEBSOCKET_PATH = "/api/drops/{id}/ws"
WEBSOCKET_OPERATION: Json = {
    "tags": ["live"],
    "summary": "A drop's live stock: upgrade to a WebSocket",
    "description": "Every server message is one JSON text frame with `type`, `dropId` and "
    "`seq` (`snapshot`, `stockUpdate`, `reservationExpired`, `purchaseCompleted`, "
    '`dropUpdated`, `dropDeleted`, `pong`); the client may send `{"type": "ping"}`. '
    "The messages are described in /api/docs/asyncapi.json and docs/websocket.md.",
    "operationId": "watch",
    "parameters": [
        {"in": "path", "name": "id", "required": True, "schema": {"type": "integer", "minimum": 1}}
    ],
    "responses": {
        "101": {"description": "Switching Protocols: the WebSocket is open"},
    },
}


def build(swagger: Json, handlers: Mapping[tuple[str, str], Callable[..., Any]]) -> Json:
    """The OpenAPI 3 document for `swagger`; `handlers` maps (method, path) to its handler."""
    spec = _refs(copy.deepcopy(swagger))
    schemas = spec.get("definitions", {})
    for schema in schemas.values():
        _nullable(schema)
    body = schemas.get("ErrorBody")
    if body is not None:
        body["properties"]["code"]["enum"] = sorted(ERROR_CODES)
    paths: Json = {}
    for path, operations in spec.get("paths", {}).items():
        paths[path] = {
            method: _operation(op, method, handlers.get((method, path)))
            for method, op in operations.items()
        }
    paths[WEBSOCKET_PATH] = {"get": _websocket_operation()}
    return {
        "openapi": OPENAPI_VERSION,
        "info": spec["info"],
        "tags": spec.get("tags", []),
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": BEARER_SCHEME}},
    }


def route_handlers(app: web.Application) -> dict[tuple[str, str], Callable[..., Any]]:
    """(method, documented path) → handler, for every route of `app`."""
    found: dict[tuple[str, str], Callable[..., Any]] = {}
    for route in app.router.routes():
        path = get_path(route)
        if path:
            found[(route.method.lower(), path)] = route.handler
    return found


def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/definitions/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else _refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_refs(item) for item in node]
    return node


def _nullable(schema: Any) -> None:
    if isinstance(schema, dict):
        if schema.pop("x-nullable", False):
            schema["nullable"] = True
        for value in schema.values():
            _nullable(value)
    elif isinstance(schema, list):
        for item in schema:
            _nullable(item)


def _operation(op: Json, method: str, handler: Callable[..., Any] | None) -> Json:
    codes = error_codes(handler)
    out = {k: v for k, v in op.items() if k not in ("parameters", "responses", "produces")}
    if handler is not None:
        name = getattr(handler, "__name__", method)
        out["operationId"] = name if method != "head" else f"{name}_head"
    parameters, body = [], None
    for parameter in op.get("parameters", []):
        if parameter["in"] == "body":
            body = parameter
        else:
            parameters.append(_parameter(parameter))
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = {
            "required": bool(body.get("required", False)),
            "content": {"application/json": {"schema": body["schema"]}},
        }
    idempotent = any(p["name"] == "Idempotency-Key" for p in parameters)
    media = (op.get("produces") or ["application/json"])[0]
    out["responses"] = {
        str(status): _response(answer, int(status), codes.get(int(status), ()), media, idempotent)
        for status, answer in op.get("responses", {}).items()
    }
    return out


def _parameter(parameter: Json) -> Json:
    out = {k: v for k, v in parameter.items() if k not in _SCHEMA_KEYS and k != "x-example"}
    if "x-example" in parameter:
        out["example"] = parameter["x-example"]
    schema = {k: v for k, v in parameter.items() if k in _SCHEMA_KEYS}
    if parameter["in"] == "path" and parameter["name"] == "id":
        schema = {"type": "integer", "minimum": 1}  # the routes match digits only
    _nullable(schema)
    out["schema"] = schema
    return out


def _response(
    answer: Json, status: int, codes: Iterable[str], media: str, idempotent: bool
) -> Json:
    codes = list(codes)
    out: Json = {"description": answer.get("description") or _reason(status)}
    headers = {
        name: {
            "description": header.get("description", ""),
            "required": status in (429, 503),
            "schema": {k: v for k, v in header.items() if k in _SCHEMA_KEYS},
        }
        for name, header in answer.get("headers", {}).items()
    }
    if codes and RETRY_AFTER_CODES.intersection(codes) and "Retry-After" in headers:
        headers["Retry-After"]["required"] = RETRY_AFTER_CODES.issuperset(codes)
    if idempotent and 200 <= status < 300:
        headers["Idempotent-Replayed"] = REPLAYED_HEADER
    if headers:
        out["headers"] = headers
    if "schema" in answer:
        content: Json = {"schema": answer["schema"]}
        if codes:
            content["examples"] = examples(codes)
        out["content"] = {"application/json": content}
    elif status == 200 and media != "application/json":
        out["content"] = {media: {"schema": {"type": "string"}}}
    return out


def _reason(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No Content"}.get(status, str(status))


def _websocket_operation() -> Json:
    op = copy.deepcopy(WEBSOCKET_OPERATION)
    for status, codes in ((404, ["not_found"]), (429, ["rate_limited"]), (503, ["unavailable"])):
        headers: Json = {}
        if RETRY_AFTER_CODES.intersection(codes):
            headers["Retry-After"] = {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer"},
            }
        op["responses"][str(status)] = {
            "description": codes[0],
            **({"headers": headers} if headers else {}),
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorOut"},
                    "examples": examples(codes),
                }
            },
        }
    return op


def add_routes(app: web.Application) -> None:
    """Serve the document, built once from the app's finished Swagger 2 document (call it
    after every documented route is added)."""
    app[OPENAPI_DOCUMENT] = build(app["swagger_dict"], route_handlers(app))

    async def document(request: web.Request) -> web.Response:
        return web.json_response(request.app[OPENAPI_DOCUMENT])

    app.router.add_get(OPENAPI_JSON, document)
