"""Rate limits (RATE_LIMIT_AUTH, RATE_LIMIT_RESERVE) and CORS (CLIENT_URL), each on a server
of the test's own with that setting."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import assert_error

SHOP = "http://shop.example"


def assert_rate_limited(status: int, body: Any, headers: Any) -> None:
    assert status == 429, body
    assert isinstance(body, dict) and body["error"]["code"] == "rate_limited", body
    assert body["error"]["message"], body
    retry_after = headers.get("Retry-After")
    assert retry_after is not None, headers
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after


async def test_fourth_login_attempt_in_a_minute_is_rate_limited(
    start_api: Callable[..., Api],
) -> None:
    api = start_api(RATE_LIMIT_AUTH="3")
    attempt = {"email": f"{api.unique()}@example.com", "password": "not-the-password"}
    for _ in range(3):
        status, body, _ = await api.call("POST", "/api/users/login", json=attempt)
        assert status == 401, body
        assert body["error"]["code"] == "invalid_credentials", body
    status, body, headers = await api.call("POST", "/api/users/login", json=attempt)
    assert_rate_limited(status, body, headers)


async def test_auth_limit_is_per_ip_across_accounts(start_api: Callable[..., Api]) -> None:
    api = start_api(RATE_LIMIT_AUTH="3")
    answers = []
    for _ in range(4):
        attempt = {"email": f"{api.unique()}@example.com", "password": "not-the-password"}
        answers.append(await api.call("POST", "/api/users/login", json=attempt))
    assert [status for status, _, _ in answers[:3]] == [401, 401, 401], answers
    assert_rate_limited(*answers[3])


async def test_auth_limit_counts_register_attempts(start_api: Callable[..., Api]) -> None:
    api = start_api(RATE_LIMIT_AUTH="3")
    answers = []
    for _ in range(4):
        name = api.unique()
        payload = {"username": name, "email": f"{name}@example.com", "password": "hunter2hunter2"}
        answers.append(await api.call("POST", "/api/users/register", json=payload))
    assert [status for status, _, _ in answers[:3]] == [201, 201, 201], answers
    assert_rate_limited(*answers[3])


async def test_burst_of_reserves_is_rate_limited(start_api: Callable[..., Api]) -> None:
    api = start_api(RATE_LIMIT_RESERVE="2")
    admin = await api.admin()
    drop = await api.drop(admin, initialStock=20, perUserLimit=20)
    _, token = await api.register()
    answers = await asyncio.gather(
        *(
            api.call("POST", "/api/reservations", token=token, json={"dropId": drop["id"]})
            for _ in range(10)
        )
    )
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {201, 429}, answers
    assert 1 <= statuses[201] <= 4, statuses
    for answer in answers:
        if answer[0] == 429:
            assert_rate_limited(*answer)
    status, body, _ = await api.call("GET", f"/api/drops/{drop['id']}")
    assert status == 200, body
    assert body["drop"]["reserved"] == statuses[201], body


async def test_reserve_limit_is_per_user(start_api: Callable[..., Api]) -> None:
    api = start_api(RATE_LIMIT_RESERVE="2")
    admin = await api.admin()
    drop = await api.drop(admin, initialStock=20, perUserLimit=20)
    tokens = [(await api.register())[1] for _ in range(4)]
    answers = await asyncio.gather(
        *(
            api.call("POST", "/api/reservations", token=token, json={"dropId": drop["id"]})
            for token in tokens
        )
    )
    assert [status for status, _, _ in answers] == [201] * 4, answers


async def test_cors_preflight_from_the_client_url_is_allowed(start_api: Callable[..., Api]) -> None:
    api = start_api(CLIENT_URL=SHOP)
    status, body, headers = await api.call(
        "OPTIONS",
        "/api/reservations",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert 200 <= status < 300, body
    assert headers.get("Access-Control-Allow-Origin") == SHOP, headers
    allowed_methods = headers.get("Access-Control-Allow-Methods", "").upper()
    assert "POST" in allowed_methods, headers
    allowed_headers = headers.get("Access-Control-Allow-Headers", "").lower()
    assert "authorization" in allowed_headers, headers
    assert "content-type" in allowed_headers, headers


@pytest.mark.parametrize("client_url", [SHOP, SHOP + "/"])
async def test_cors_simple_request_from_the_client_url_is_allowed(
    start_api: Callable[..., Api], client_url: str
) -> None:
    """CLIENT_URL may be written with a trailing slash: the browser's Origin has none."""
    api = start_api(CLIENT_URL=client_url)
    status, body, headers = await api.call("GET", "/api/drops", headers={"Origin": SHOP})
    assert status == 200, body
    assert headers.get("Access-Control-Allow-Origin") == SHOP, headers


async def test_cors_preflight_from_another_origin_gets_no_allow_header(
    start_api: Callable[..., Api],
) -> None:
    api = start_api(CLIENT_URL=SHOP)
    status, body, headers = await api.call(
        "OPTIONS",
        "/api/reservations",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert status < 500, body
    assert "Access-Control-Allow-Origin" not in headers, headers


async def test_cors_simple_request_from_another_origin_gets_no_allow_header(
    start_api: Callable[..., Api],
) -> None:
    api = start_api(CLIENT_URL=SHOP)
    status, body, headers = await api.call(
        "GET", "/api/drops", headers={"Origin": "http://evil.example"}
    )
    assert status == 200, body
    assert "Access-Control-Allow-Origin" not in headers, headers


async def test_every_cors_governed_answer_varies_by_origin(start_api: Callable[..., Api]) -> None:
    """Whether an answer carries Access-Control-Allow-Origin depends on the request's Origin,
    so a shared cache must key it by Origin: else it could hand the shop's browser an answer
    cached for a request without one (no allow header: the browser refuses it)."""
    api = start_api(CLIENT_URL=SHOP)
    for origin in (SHOP, "http://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        for path in ("/api/drops", "/api/drops/999999"):
            status, body, got = await api.call("GET", path, headers=headers)
            assert status in (200, 404), body
            vary = [v.strip().lower() for v in got.get("Vary", "").split(",")]
            assert "origin" in vary, (origin, path, got)
    _, _, got = await api.call(
        "OPTIONS",
        "/api/reservations",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert "origin" in got.get("Vary", "").lower(), got


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": SHOP}],
    ids=["no-origin", "origin-without-request-method"],
)
async def test_an_options_request_that_is_no_preflight_is_a_405_with_allow(
    start_api: Callable[..., Api], headers: dict[str, str]
) -> None:
    """OPTIONS without Origin (curl, a monitoring probe) or without the method a browser's
    preflight names is no CORS preflight: it gets what it gets without CLIENT_URL, 405 with the
    route's methods in Allow, not a 403 `forbidden`, which says "your role may not"."""
    for client_url in (None, SHOP):
        api = start_api(CLIENT_URL=client_url) if client_url else start_api()
        status, body, got = await api.call("OPTIONS", "/api/drops", headers=headers)
        assert_error(status, body, 405, "method_not_allowed")
        assert set(got["Allow"].split(",")) == {"GET", "HEAD", "POST"}, got


async def test_a_refused_preflight_says_why(start_api: Callable[..., Api]) -> None:
    api = start_api(CLIENT_URL=SHOP)
    status, body, got = await api.call(
        "OPTIONS",
        "/api/reservations",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert_error(status, body, 403, "forbidden")
    assert "http://evil.example" in body["error"]["message"], body
    assert "CORS" in body["error"]["message"], body
    assert "Access-Control-Allow-Origin" not in got, got
