"""The OpenAPI 3 document at /api/docs/openapi.json, as a real server serves it.

It must be a valid OpenAPI 3.0 document (and swagger.json a valid Swagger 2 one), list every
route the app serves, mark every authenticated operation with the `http`/`bearer` scheme (and
those really answer 401 without a token), enumerate exactly the error codes the code can emit,
show under each status examples of that status's codes only, and carry the Retry-After,
Idempotency-Key and Idempotent-Replayed headers where they occur.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator

import sneakerd
from sneakerd.config import Settings
from sneakerd.web.app import SWAGGER_JSON, create_app
from sneakerd.web.error_catalog import ERROR_CODES
from sneakerd.web.openapi3 import OPENAPI_JSON, WEBSOCKET_PATH
from tests.api.conftest import Api

METHODS = ("get", "put", "post", "delete", "head")
NOT_API = ("/api/docs/", "/api-docs", "/static/", "/internal/")
"""Routes that are pages, documents or node-to-node, not operations of the API."""


async def document(api: Api, path: str = OPENAPI_JSON) -> dict[str, Any]:
    status, body, headers = await api.call("GET", path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(body, dict)
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def served_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(jwt_secret="s" * 40))
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(("/api/", "/healthz", "/readyz", "/metrics")) and not path.startswith(
            NOT_API
        ):
            found.add((route.method.lower(), path))
    return found


def emitted_codes() -> set[str]:
    """Every error code sneakerd's source names where it builds an error answer.

    The code of each `ApiError(status, "code", ...)` and `error_body("code", ...)`, every
    class's `code = "..."` (the errors' hierarchy), the keys and values of `problems`'
    `STATUS_BY_CODE` and `HTTP_CODES`, `{"code": "..."}` literals (the WebSocket's refusals)
    and `code, text = "...", ...` (the transport's own answers)."""
    codes: set[str] = set()
    for path in Path(sneakerd.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            codes |= _codes_in(node)
    codes.discard("domain_error")  # DomainError's placeholder: only its subclasses are raised
    return codes


def _codes_in(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Call):
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name == "ApiError" and len(node.args) >= 2:
            return _literal(node.args[1])
        if name == "error_body" and node.args:
            return _literal(node.args[0])
    elif isinstance(node, ast.ClassDef):
        found: set[str] = set()
        for item in node.body:
            if isinstance(item, ast.Assign) and _names(item.targets) == ["code"]:
                found |= _literal(item.value)
            elif isinstance(item, ast.AnnAssign) and _names([item.target]) == ["code"]:
                found |= _literal(item.value) if item.value is not None else set()
        return found
    elif isinstance(node, ast.Assign) and _names(node.targets) in (
        ["HTTP_CODES"],
        ["STATUS_BY_CODE"],
    ):
        assert isinstance(node.value, ast.Dict)
        keys = [k for k in node.value.keys if k is not None]
        return set().union(*(_literal(n) for n in [*keys, *node.value.values]))
    elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
        target = node.targets[0]
        if isinstance(target, ast.Tuple) and _names(target.elts[:1]) == ["code"]:
            return _literal(node.value.elts[0])
    elif isinstance(node, ast.Dict):
        return set().union(
            set(),
            *(
                _literal(v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "code"
            ),
        )
    return set()


def _names(targets: list[ast.expr]) -> list[str]:
    return [getattr(t, "id", "") for t in targets]


def _literal(node: ast.expr) -> set[str]:
    text = node.value if isinstance(node, ast.Constant) else None
    if isinstance(text, str) and text.replace("_", "").isalpha() and text.islower():
        return {text}
    return set()


async def test_the_documents_are_valid_openapi_3_and_swagger_2(api: Api) -> None:
    doc = await document(api)
    assert doc["openapi"].startswith("3.0."), doc["openapi"]
    validate(doc)
    validate(await document(api, SWAGGER_JSON), cls=OpenAPIV2SpecValidator)


async def test_every_route_is_in_the_document(api: Api) -> None:
    doc = await document(api)
    listed = {(method, path) for method, path, _ in operations(doc)}
    served = served_routes()
    assert ("post", "/api/reservations") in served and ("get", WEBSOCKET_PATH) in served
    served.discard(("head", WEBSOCKET_PATH))  # aiohttp's HEAD twin of the upgrade; no operation
    assert served - listed == set(), served - listed
    assert listed - served == set(), listed - served
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), ids


async def test_authenticated_operations_use_the_bearer_scheme_and_really_need_it(
    api: Api,
) -> None:
    doc = await document(api)
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    secured = []
    for method, path, op in operations(doc):
        if method == "head" or path == WEBSOCKET_PATH:
            continue
        status, body, _ = await api.call(
            method.upper(),
            path.replace("{id}", "999999"),
            json={} if method in ("post", "put") else None,
        )
        if op.get("security") is not None:
            assert op["security"] == [{"bearer": []}], (method, path)
            assert "401" in op["responses"], (method, path)
            assert (status, body["error"]["code"]) == (401, "unauthorized"), (method, path, body)
            secured.append((method, path))
        else:
            assert status != 401 or path == "/api/users/login", (method, path, status, body)
    assert ("post", "/api/reservations") in secured and ("post", "/api/drops") in secured
    assert ("get", "/api/users/profile") in secured


async def test_a_token_works_as_the_bearer_scheme_says(api: Api) -> None:
    """What Swagger UI's Authorize sends: `Authorization: Bearer <the token as pasted>`."""
    user, token = await api.register()
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert (status, body["user"]["id"]) == (200, user["id"])


async def test_the_error_code_enum_is_exactly_what_the_code_can_emit(api: Api) -> None:
    doc = await document(api)
    swagger = await document(api, SWAGGER_JSON)
    enum = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
    assert enum == sorted(ERROR_CODES)
    assert swagger["definitions"]["ErrorBody"]["properties"]["code"]["enum"] == enum
    found = emitted_codes()
    assert {"out_of_stock", "invalid_credentials", "internal_error", "bad_request"} <= found
    assert set(enum) == found, (set(enum) - found, found - set(enum))


async def test_each_status_shows_examples_of_its_own_codes(api: Api) -> None:
    doc = await document(api)
    seen = 0
    for method, path, op in operations(doc):
        for status, answer in op["responses"].items():
            content = answer.get("content", {}).get("application/json", {})
            for name, example in content.get("examples", {}).items():
                code = example["value"]["error"]["code"]
                assert code == name and ERROR_CODES[code] == int(status), (method, path, status)
                seen += 1
            if int(status) >= 400 and status != "101":
                assert content.get("examples"), (method, path, status)
    assert seen > 50

    def codes(path: str, method: str, status: int) -> list[str]:
        answer = doc["paths"][path][method]["responses"][str(status)]
        return list(answer["content"]["application/json"]["examples"])

    reserve = ("/api/reservations", "post")
    assert codes(*reserve, 409) == [
        "out_of_stock",
        "limit_reached",
        "drop_not_live",
        "drop_ended",
        "request_in_progress",
        "drop_paused",
        "raffle_only",
        "not_admitted",
    ]
    assert codes(*reserve, 401) == ["unauthorized"]
    assert codes(*reserve, 422) == ["validation_error", "idempotency_key_reused"]
    assert codes(*reserve, 429) == ["rate_limited"]
    assert codes(*reserve, 503) == ["unavailable"]
    assert codes("/api/users/login", "post", 401) == ["invalid_credentials"]
    assert codes("/api/drops", "post", 403) == ["forbidden"]
    assert codes("/api/drops/{id}", "delete", 409) == ["drop_has_sales"]
    swagger = await document(api, SWAGGER_JSON)
    shown = swagger["paths"]["/api/users/profile"]["get"]["responses"]["401"]["examples"]
    assert shown["application/json"]["error"]["code"] == "unauthorized"


async def test_the_headers_are_where_they_occur(api: Api) -> None:
    doc = await document(api)
    for method, path, op in operations(doc):
        for status in ("429", "503"):
            if status in op["responses"]:
                header = op["responses"][status]["headers"]["Retry-After"]
                assert header["required"] is True and header["schema"]["type"] == "integer"
        names = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
        keyed = (method, path) in {("post", "/api/reservations"), ("post", "/api/purchases")}
        assert ("Idempotency-Key" in names) == keyed, (method, path)
        for status, answer in op["responses"].items():
            replayed = "Idempotent-Replayed" in answer.get("headers", {})
            assert replayed == (keyed and status.startswith("2")), (method, path, status)
        if keyed:
            assert names["Idempotency-Key"]["schema"]["type"] == "string"
            assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"]


async def test_a_replayed_answer_carries_the_documented_header(api: Api) -> None:
    admin = await api.admin()
    drop = await api.drop(admin)
    _, token = await api.register()
    key = {"Idempotency-Key": api.unique("k")}
    first = await api.call(
        "POST", "/api/reservations", token=token, json={"dropId": drop["id"]}, headers=key
    )
    again = await api.call(
        "POST", "/api/reservations", token=token, json={"dropId": drop["id"]}, headers=key
    )
    assert (first[0], again[0]) == (201, 201) and first[1] == again[1]
    assert "Idempotent-Replayed" not in first[2]
    assert again[2]["Idempotent-Replayed"] == "true"


async def test_the_websocket_is_described(api: Api) -> None:
    doc = await document(api)
    op = doc["paths"][WEBSOCKET_PATH]["get"]
    assert "101" in op["responses"] and "404" in op["responses"]
    assert "asyncapi" in op["description"]
