"""Bad input of every kind: always the JSON error envelope (docs/API.md), never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import assert_envelope, assert_error

SQL = "1; DROP TABLE drops; --"
SQL_QUOTE = "' OR '1'='1"
JSON_HEADERS = {"Content-Type": "application/json"}


# --- not JSON, wrong content type, too large ---------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/users/register", "/api/users/login", "/api/reservations", "/api/purchases"]
)
async def test_body_that_is_not_json_is_bad_request(api: Api, path: str) -> None:
    _, token = await api.register()
    status, body, headers = await api.call(
        "POST",
        path,
        token=token,
        data=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 400, "bad_request", headers)


async def test_drop_body_that_is_not_json_is_bad_request(api: Api, admin_token: str) -> None:
    status, body, headers = await api.call(
        "POST",
        "/api/drops",
        token=admin_token,
        data=b"name=x&price=1",
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 400, "bad_request", headers)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_wrong_content_type_is_bad_request(api: Api, content_type: str) -> None:
    name = api.unique()
    payload = {"username": name, "email": f"{name}@example.com", "password": "x" * 9}
    status, body, headers = await api.call(
        "POST",
        "/api/users/register",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": content_type},
    )
    assert_error(status, body, 400, "bad_request", headers)


async def test_missing_body_is_bad_request(api: Api) -> None:
    status, body, headers = await api.call(
        "POST", "/api/users/login", headers={"Content-Type": "application/json"}
    )
    assert_error(status, body, 400, "bad_request", headers)


@pytest.mark.parametrize("data", [b"\xff\xfe\xfa", b"NaN", b'{"a": Infinity}', b"{'a': 1}"])
async def test_json_that_is_not_strict_json_is_bad_request(api: Api, data: bytes) -> None:
    status, body, headers = await api.call(
        "POST", "/api/users/login", data=data, headers={"Content-Type": "application/json"}
    )
    assert_error(status, body, 400, "bad_request", headers)


async def test_body_over_max_body_bytes_is_payload_too_large(api: Api) -> None:
    payload = {"username": api.unique(), "email": "big@example.com", "password": "p" * 70_000}
    status, body, headers = await api.call("POST", "/api/users/register", json=payload)
    assert_error(status, body, 413, "payload_too_large", headers)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_body_over_max_body_bytes_is_too_large_whatever_its_content_type(
    api: Api, content_type: str
) -> None:
    """Too large is the first thing wrong with it: fixing the content type would not help."""
    status, body, headers = await api.call(
        "POST", "/api/users/register", data=b"x" * 70_000, headers={"Content-Type": content_type}
    )
    assert_error(status, body, 413, "payload_too_large", headers)


async def test_large_body_on_an_authenticated_route_is_payload_too_large(
    api: Api, admin_token: str
) -> None:
    payload = {"name": "big", "price": "1.00", "initialStock": 1, "description": "d" * 66_000}
    status, body, headers = await api.call("POST", "/api/drops", token=admin_token, json=payload)
    assert_error(status, body, 413, "payload_too_large", headers)


async def test_body_just_under_the_limit_is_read(api: Api, admin_token: str) -> None:
    payload = {"name": "fits", "price": "1.00", "initialStock": 1, "description": ""}
    room = 65_536 - len(json.dumps(payload).encode()) - 100
    payload["description"] = "d" * room
    status, body, headers = await api.call("POST", "/api/drops", token=admin_token, json=payload)
    assert status != 413, body
    assert status < 500, body
    if status >= 400:
        assert_envelope(status, body, headers)


# --- unknown paths and methods ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/api/users"),
        ("GET", "/api/drops/1/nope"),
        ("GET", "/index.html"),
        ("GET", "/api/reservations/user/extra"),
    ],
)
async def test_unknown_path_is_json_not_found(api: Api, method: str, path: str) -> None:
    status, body, headers = await api.call(method, path)
    assert_error(status, body, 404, "not_found", headers)
    assert "<html" not in json.dumps(body).lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/api/drops"), ("DELETE", "/api/users/profile"), ("PUT", "/api/purchases")],
)
async def test_wrong_method_is_a_json_error(api: Api, method: str, path: str) -> None:
    status, body, headers = await api.call(method, path)
    assert status in (404, 405), body
    assert_envelope(status, body, headers)


# --- garbage of every shape -------------------------------------------------------------------

GARBAGE: list[Any] = [
    None,
    [],
    [1, 2, 3],
    "a string",
    42,
    True,
    {"dropId": None},
    {"dropId": SQL},
    {"dropId": SQL_QUOTE},
    {"dropId": 10**30},
    {"dropId": -(10**30)},
    {"dropId": 1e308},
    {"dropId": -1},
    {"dropId": 0},
    {"dropId": True},
    {"dropId": {"id": 1}},
    {"dropId": [1]},
    {"dropId": "💥"},
    {"reservationId": SQL},
    {"reservationId": 10**30},
    {"reservationId": -7},
    {"reservationId": [None]},
    {"reservationId": False},
]


@pytest.mark.parametrize("payload", GARBAGE)
@pytest.mark.parametrize("path", ["/api/reservations", "/api/purchases"])
async def test_garbage_to_hold_and_buy_is_a_clean_4xx(api: Api, path: str, payload: Any) -> None:
    _, token = await api.register()
    status, body, headers = await api.call(
        "POST", path, token=token, data=json.dumps(payload), headers=JSON_HEADERS
    )
    assert_envelope(status, body, headers)


USER_GARBAGE: list[Any] = [
    None,
    [],
    ["username", "email"],
    "text",
    {"username": None, "email": None, "password": None},
    {"username": 123, "email": 456, "password": 789},
    {"username": ["a"], "email": {"x": 1}, "password": True},
    {"username": SQL_QUOTE, "email": f"{SQL_QUOTE}@example.com", "password": SQL_QUOTE},
    {"username": "ok_name", "email": "a@b.c", "password": "p" * 10_000},
    {"username": "ünïcödé_✓", "email": "ü@例え.jp", "password": "пароль-пароль"},
    {"username": "a\u0000b", "email": "nul\u0000@example.com", "password": "x\u0000" * 8},
    {"email": 10**40, "password": 1e308},
]


@pytest.mark.parametrize("payload", USER_GARBAGE)
@pytest.mark.parametrize("path", ["/api/users/register", "/api/users/login"])
async def test_garbage_to_register_and_login_is_a_clean_4xx(
    api: Api, path: str, payload: Any
) -> None:
    status, body, headers = await api.call(
        "POST", path, data=json.dumps(payload), headers=JSON_HEADERS
    )
    assert_envelope(status, body, headers)


DROP_GARBAGE: list[Any] = [
    None,
    [],
    [{"name": "x", "price": "1", "initialStock": 1}],
    "drop",
    {"name": None, "price": None, "initialStock": None},
    {"name": "x", "price": 1e308, "initialStock": 1},
    {"name": "x", "price": "1e999", "initialStock": 1},
    {"name": "x", "price": "NaN", "initialStock": 1},
    {"name": "x", "price": "Infinity", "initialStock": 1},
    {"name": "x", "price": "-0.001", "initialStock": 1},
    {"name": "x", "price": "12345678901234567890.99", "initialStock": 1},
    {"name": "x", "price": "1.999", "initialStock": 1},
    {"name": "x", "price": "1", "initialStock": 10**20},
    {"name": "x", "price": "1", "initialStock": -(10**20)},
    {"name": "x", "price": "1", "initialStock": 1, "perUserLimit": 10**20},
    {"name": "x", "price": "1", "initialStock": 1, "perUserLimit": True},
    {"name": "x", "price": "1", "initialStock": 1, "startsAt": "2030-02-30T00:00:00Z"},
    {"name": "x", "price": "1", "initialStock": 1, "startsAt": "99999-01-01T00:00:00Z"},
    {"name": "x", "price": "1", "initialStock": 1, "startsAt": 1700000000},
    {"name": "x", "price": "1", "initialStock": 1, "endsAt": ["2030-01-01"]},
    {"name": "x" * 5000, "price": "1", "initialStock": 1},
    {"name": ["x"], "price": {"amount": 1}, "initialStock": [1]},
    {"name": SQL_QUOTE, "price": SQL, "initialStock": SQL},
]


@pytest.mark.parametrize("payload", DROP_GARBAGE)
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_garbage_drop_writes_are_a_clean_answer(
    api: Api, admin_token: str, method: str, payload: Any
) -> None:
    path = "/api/drops"
    if method == "PUT":
        path = f"/api/drops/{(await api.drop(admin_token))['id']}"
    status, body, headers = await api.call(
        method, path, token=admin_token, data=json.dumps(payload), headers=JSON_HEADERS
    )
    assert status < 500, body
    if status >= 400:
        assert_envelope(status, body, headers)
    else:
        drop = body["drop"]
        assert drop["stock"] + drop["reserved"] + drop["sold"] == drop["initialStock"], drop


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/drops/-1"),
        ("GET", "/api/drops/0"),
        ("GET", "/api/drops/abc"),
        ("GET", "/api/drops/1.5"),
        ("GET", "/api/drops/99999999999999999999999999"),
        ("GET", "/api/drops/1%27%20OR%20%271%27%3D%271"),
        ("GET", "/api/drops/%F0%9F%92%A5"),
        ("PUT", "/api/drops/-1"),
        ("DELETE", "/api/drops/abc"),
        ("DELETE", "/api/drops/99999999999999999999999999"),
        ("DELETE", "/api/reservations/-5"),
        ("DELETE", "/api/reservations/abc"),
        ("DELETE", "/api/reservations/99999999999999999999999999"),
        ("GET", "/api/purchases/drop/abc"),
        ("GET", "/api/purchases/drop/-3"),
        ("GET", "/api/purchases/drop/99999999999999999999999999"),
        ("GET", "/api/drops?status=%27%20OR%201%3D1%20--"),
    ],
)
async def test_odd_ids_and_queries_are_a_clean_4xx(
    api: Api, admin_token: str, method: str, path: str
) -> None:
    status, body, headers = await api.call(
        method, path, token=admin_token, json={"name": "x"} if method == "PUT" else None
    )
    assert_envelope(status, body, headers)


async def test_database_survives_injection_attempts(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, name=SQL_QUOTE, brand=SQL, description="'); --")
    status, body, _ = await api.call("GET", f"/api/drops/{drop['id']}")
    assert status == 200, body
    assert (body["drop"]["name"], body["drop"]["brand"]) == (SQL_QUOTE, SQL)
    status, body, _ = await api.call("GET", "/api/drops")
    assert status == 200, body
    assert drop["id"] in {d["id"] for d in body["drops"]}


async def test_unicode_round_trips(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, name="エア ジョーダン 1 ✓", brand="Ñike 👟")
    status, body, _ = await api.call("GET", f"/api/drops/{drop['id']}")
    assert status == 200, body
    assert (body["drop"]["name"], body["drop"]["brand"]) == ("エア ジョーダン 1 ✓", "Ñike 👟")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "a" * 5000,
        "Bearer " + SQL_QUOTE,
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.",
        "Bearer \u00e9\u00e9",
        "Bearer a.b.c.d.e",
    ],
)
async def test_odd_authorization_headers_are_unauthorized(api: Api, authorization: str) -> None:
    status, body, headers = await api.call(
        "POST",
        "/api/reservations",
        json={"dropId": 1},
        headers={"Authorization": authorization},
    )
    assert_error(status, body, 401, "unauthorized", headers)


async def test_server_is_healthy_after_all_that(api: Api) -> None:
    status, body, _ = await api.call("GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")
    status, _, _ = await api.call("GET", "/readyz")
    assert status == 200


async def test_json_with_a_charset_parameter_is_accepted(api: Api) -> None:
    name = api.unique()
    payload = {"username": name, "email": f"{name}@example.com", "password": "hunter2hunter2"}
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 201, body


@pytest.mark.parametrize("idempotency_key", ["", " ", "k" * 5000, "ключ-💥", SQL_QUOTE])
async def test_odd_idempotency_keys_are_a_clean_answer(
    api: Api, admin_token: str, idempotency_key: str
) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    status, body, headers = await api.call(
        "POST",
        "/api/reservations",
        token=token,
        json={"dropId": drop["id"]},
        headers={"Idempotency-Key": idempotency_key},
    )
    assert status < 500, body
    if status >= 400:
        assert_envelope(status, body, headers)
    else:
        assert status == 201, body
