"""Hostile input, fuzzed: hypothesis throws junk at every write route of a running server.

Whatever arrives (deep or huge JSON, wrong types, unicode edge cases, SQL-injection strings,
forged or expired tokens, other people's ids), the answer is one of docs/API.md's error envelopes or
a success, never a 5xx, and the database's invariants still hold afterwards.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serverproc import Server

SQLI = [
    "' OR '1'='1",
    "1; DROP TABLE drops; --",
    '" OR 1=1 --',
    "admin'--",
    "1 UNION SELECT password_hash FROM users",
    "%s%s%s",
    "\\x00",
    "😀" * 50,
    "\u202e\u0000\ud7ff",
    "\uff46\uff55\uff4c\uff4c",
    "a" * 300,
]
ERROR_CODES = {
    "bad_request",
    "unauthorized",
    "invalid_credentials",
    "forbidden",
    "not_found",
    "out_of_stock",
    "limit_reached",
    "drop_not_live",
    "drop_ended",
    "reservation_not_active",
    "reservation_expired",
    "email_taken",
    "username_taken",
    "drop_has_sales",
    "stock_below_committed",
    "validation_error",
    "payload_too_large",
    "rate_limited",
    "method_not_allowed",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(SQLI),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "name",
    "price",
    "initialStock",
    "brand",
    "description",
    "imageUrl",
    "perUserLimit",
    "holdsPerUser",
    "startsAt",
    "endsAt",
    "dropId",
    "reservationId",
    "username",
    "email",
    "password",
]
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    json_values,
)
ROUTES = [
    ("POST", "/api/users/register"),
    ("POST", "/api/users/login"),
    ("POST", "/api/drops"),
    ("PUT", "/api/drops/{id}"),
    ("DELETE", "/api/drops/{id}"),
    ("POST", "/api/reservations"),
    ("DELETE", "/api/reservations/{id}"),
    ("POST", "/api/purchases"),
    ("GET", "/api/drops/{id}"),
    ("GET", "/api/purchases/drop/{id}"),
]


@pytest.fixture(scope="module")
def target(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    server = Server(module_store_url, {}, tmp_path_factory.mktemp("hostile")).start()
    server.admin_token_cli("boss@example.com", "boss", "hunter2hunter2")
    admin = _call(
        server,
        "POST",
        "/api/users/login",
        None,
        {"email": "boss@example.com", "password": "hunter2hunter2"},
    )[1]["token"]
    customer = _call(
        server,
        "POST",
        "/api/users/register",
        None,
        {"username": "victim", "email": "victim@example.com", "password": "hunter2hunter2"},
    )[1]["token"]
    _call(server, "POST", "/api/drops", admin, {"name": "Target", "price": "1", "initialStock": 3})
    now = int(time.time())
    tokens = {
        "admin": admin,
        "customer": customer,
        "none": "",
        "garbage": "not.a.token",
        "alg_none": jwt.encode(
            {"sub": "1", "role": "admin", "iat": now, "exp": now + 60}, key="", algorithm="none"
        ),
        "forged": jwt.encode(
            {"sub": "1", "role": "admin", "iat": now, "exp": now + 60},
            "wrong-secret-" + "z" * 40,
            algorithm="HS256",
        ),
        "expired": jwt.encode(
            {"sub": "1", "role": "admin", "iat": now - 100, "exp": now - 50},
            server.jwt_secret,
            algorithm="HS256",
        ),
        "ghost": jwt.encode(
            {"sub": "987654", "role": "customer", "iat": now, "exp": now + 60},
            server.jwt_secret,
            algorithm="HS256",
        ),
    }
    yield server, tokens
    out = server.stop()
    assert "Traceback" not in out, out


def _call(
    server: Server,
    method: str,
    path: str,
    token: str | None,
    body: Any,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def _check(status: int, body: Any) -> None:
    assert status < 500, (status, body)
    if status >= 400:
        assert set(body) == {"error"} and body["error"]["code"] in ERROR_CODES, body
        assert isinstance(body["error"]["message"], str)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    who=st.sampled_from(
        ["admin", "customer", "none", "garbage", "alg_none", "forged", "expired", "ghost"]
    ),
    ident=st.one_of(
        st.integers(min_value=0, max_value=5), st.integers(min_value=2**53, max_value=2**80)
    ),
)
def test_junk_never_breaks_the_server(
    target: tuple[Server, dict[str, str]], route: tuple[str, str], body: Any, who: str, ident: int
) -> None:
    server, tokens = target
    method, path = route
    status, answer = _call(
        server,
        method,
        path.replace("{id}", str(ident)),
        tokens[who],
        body if method in ("POST", "PUT") else None,
    )
    _check(status, answer)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"dropId": ' + b"9" * 5000 + b"}",
        '{"dropId": "\ud800"}'.encode("utf-8", "surrogatepass"),
        b"\xff\xfe",
        b"null",
        b"",
        json.dumps({"dropId": 1, "x": ["y" * 1000] * 60}).encode(),
    ],
)
def test_malformed_bodies_get_envelopes(target: tuple[Server, dict[str, str]], raw: bytes) -> None:
    server, tokens = target
    status, body = _call(server, "POST", "/api/reservations", tokens["customer"], None, raw=raw)
    _check(status, body)
    assert status in (400, 413, 422), (status, body)


def test_the_database_is_intact_after_the_fuzzing(
    target: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    import subprocess
    import sys

    server, _ = target
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", "db", "check", "--db", server.db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
