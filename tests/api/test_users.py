"""Users over HTTP: register, login, profile and the bearer token (API.md, REST and Auth)."""

from __future__ import annotations

import time
import uuid
import warnings
from typing import Any

import jwt
import pytest

from tests.api.conftest import Api
from tests.api.helpers import ISO_MS, assert_error, assert_validation

PASSWORD = "hunter2hunter2"
USER_KEYS = {"id", "username", "email", "role", "createdAt"}


def new_identity(api: Api) -> dict[str, str]:
    name = api.unique()
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}


def assert_user(user: Any, username: str, email: str) -> None:
    assert isinstance(user, dict)
    assert set(user) >= USER_KEYS, user
    assert not any("password" in k.lower() or "hash" in k.lower() for k in user), user
    assert isinstance(user["id"], int) and user["id"] > 0
    assert user["username"] == username
    assert user["email"] == email
    assert user["role"] == "customer"
    assert ISO_MS.match(user["createdAt"]), user


def claims(user_id: int, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(user_id), "role": "customer", "iat": now, "exp": now + 3600, **overrides}


# --- register ---------------------------------------------------------------------------------


async def test_register_returns_user_and_token(api: Api) -> None:
    ident = new_identity(api)
    status, body, headers = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"user", "token"}
    assert_user(body["user"], ident["username"], ident["email"])
    assert isinstance(body["token"], str) and body["token"]


async def test_register_never_reveals_the_password_or_its_hash(api: Api) -> None:
    ident = new_identity(api)
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    text = repr(body)
    assert PASSWORD not in text
    assert "$2b$" not in text and "$2a$" not in text and "$2y$" not in text


async def test_register_token_is_hs256_with_the_contract_claims(api: Api) -> None:
    ident = new_identity(api)
    _, body, _ = await api.call("POST", "/api/users/register", json=ident)
    token = body["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    decoded = jwt.decode(token, api.server.jwt_secret, algorithms=["HS256"])
    assert decoded["sub"] == str(body["user"]["id"])
    assert decoded["role"] == "customer"
    assert isinstance(decoded["iat"], int) and isinstance(decoded["exp"], int)
    assert abs(decoded["iat"] - time.time()) < 60
    assert decoded["exp"] - decoded["iat"] == 86400  # JWT_TTL default


@pytest.mark.parametrize("length", [3, 32])
async def test_register_accepts_username_length_bounds(api: Api, length: int) -> None:
    username = uuid.uuid4().hex[:length]
    email = f"edge{uuid.uuid4().hex[:8]}@example.com"
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={"username": username, "email": email, "password": PASSWORD},
    )
    assert status == 201, body
    assert body["user"]["username"] == username


async def test_register_accepts_every_allowed_username_character(api: Api) -> None:
    username = f"Az09_.-{uuid.uuid4().hex[:8]}"
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    assert status == 201, body
    assert body["user"]["username"] == username


@pytest.mark.parametrize("password", ["p" * 8, "p" * 128])
async def test_register_accepts_password_length_bounds(api: Api, password: str) -> None:
    ident = {**new_identity(api), "password": password}
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    status, body, _ = await api.call(
        "POST", "/api/users/login", json={"email": ident["email"], "password": password}
    )
    assert status == 200, body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "a" * 33),
        ("username", "bad name"),
        ("username", "bad!name"),
        ("username", "ünïcode"),
        ("username", ""),
        ("email", "not-an-email"),
        ("email", ""),
        ("password", "p" * 7),
        ("password", "p" * 129),
    ],
)
async def test_register_rejects_invalid_field(api: Api, field: str, value: str) -> None:
    ident = {**new_identity(api), field: value}
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert_validation(status, body, field)


@pytest.mark.parametrize("field", ["username", "email", "password"])
async def test_register_rejects_missing_field(api: Api, field: str) -> None:
    ident = new_identity(api)
    del ident[field]
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert_validation(status, body, field)


async def test_register_reports_every_invalid_field_at_once(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={"username": "x", "email": "nope", "password": "short"},
    )
    for field in ("username", "email", "password"):
        assert_validation(status, body, field)


async def test_register_duplicate_email_is_email_taken(api: Api) -> None:
    ident = new_identity(api)
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    again = {**ident, "username": api.unique()}
    status, body, _ = await api.call("POST", "/api/users/register", json=again)
    assert_error(status, body, 409, "email_taken")


async def test_register_duplicate_username_is_username_taken(api: Api) -> None:
    ident = new_identity(api)
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    again = {**ident, "email": f"{api.unique()}@example.com"}
    status, body, _ = await api.call("POST", "/api/users/register", json=again)
    assert_error(status, body, 409, "username_taken")


# --- login ------------------------------------------------------------------------------------


async def test_login_returns_user_and_a_working_token(api: Api) -> None:
    user, _ = await api.register()
    status, body, _ = await api.call(
        "POST", "/api/users/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert status == 200, body
    assert set(body) == {"user", "token"}
    assert_user(body["user"], user["username"], user["email"])
    assert body["user"]["id"] == user["id"]
    status, profile, _ = await api.call("GET", "/api/users/profile", token=body["token"])
    assert status == 200, profile
    assert profile["user"]["id"] == user["id"]


async def test_login_wrong_password_is_invalid_credentials(api: Api) -> None:
    user, _ = await api.register()
    status, body, _ = await api.call(
        "POST", "/api/users/login", json={"email": user["email"], "password": "wrong-password"}
    )
    assert_error(status, body, 401, "invalid_credentials")


async def test_login_unknown_email_is_invalid_credentials(api: Api) -> None:
    status, body, _ = await api.call(
        "POST",
        "/api/users/login",
        json={"email": f"{api.unique()}@example.com", "password": PASSWORD},
    )
    assert_error(status, body, 401, "invalid_credentials")


# --- profile and tokens -----------------------------------------------------------------------


async def test_profile_returns_the_callers_user(api: Api) -> None:
    user, token = await api.register()
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert status == 200, body
    assert set(body) == {"user"}
    assert body["user"] == user


async def test_profile_without_token_is_unauthorized(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/users/profile")
    assert_error(status, body, 401, "unauthorized")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer ", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "garbage", "Bearer 💥"],
)
async def test_profile_with_garbage_authorization_is_unauthorized(
    api: Api, authorization: str
) -> None:
    status, body, _ = await api.call(
        "GET", "/api/users/profile", headers={"Authorization": authorization}
    )
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_expired_token_is_unauthorized(api: Api) -> None:
    user, _ = await api.register()
    now = int(time.time())
    token = jwt.encode(
        claims(user["id"], iat=now - 7200, exp=now - 3600), api.server.jwt_secret, "HS256"
    )
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_alg_none_token_is_unauthorized(api: Api) -> None:
    user, _ = await api.register()
    token = jwt.encode(claims(user["id"]), None, algorithm="none")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_hs512_token_on_the_same_secret_is_unauthorized(api: Api) -> None:
    user, _ = await api.register()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = jwt.encode(claims(user["id"]), api.server.jwt_secret, algorithm="HS512")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_bad_signature_is_unauthorized(api: Api) -> None:
    user, _ = await api.register()
    token = jwt.encode(claims(user["id"]), "another-secret-" + "y" * 40, algorithm="HS256")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_tampered_payload_is_unauthorized(api: Api) -> None:
    _, token = await api.register()
    other, _ = await api.register()
    header, _, signature = token.split(".")
    forged_payload = jwt.encode(claims(other["id"]), "whatever-" + "z" * 40, "HS256").split(".")[1]
    status, body, _ = await api.call(
        "GET", "/api/users/profile", token=f"{header}.{forged_payload}.{signature}"
    )
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_token_without_exp_is_unauthorized(api: Api) -> None:
    user, _ = await api.register()
    payload = claims(user["id"])
    del payload["exp"]
    token = jwt.encode(payload, api.server.jwt_secret, algorithm="HS256")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_token_for_a_user_that_does_not_exist_is_unauthorized(
    api: Api,
) -> None:
    token = jwt.encode(claims(987_654_321), api.server.jwt_secret, algorithm="HS256")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert_error(status, body, 401, "unauthorized")


async def test_profile_with_a_freshly_forged_valid_token_is_accepted(api: Api) -> None:
    """The forging helpers above are sound: the same claims, signed right, do work."""
    user, _ = await api.register()
    token = jwt.encode(claims(user["id"]), api.server.jwt_secret, algorithm="HS256")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert status == 200, body
    assert body["user"]["id"] == user["id"]
