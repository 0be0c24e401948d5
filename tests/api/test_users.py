"""Users over HTTP: register, login, profile and the bearer token (docs/API.md, REST and Auth)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import bcrypt
import jwt
import pytest

from sneakerd.domain.model import Role
from sneakerd.passwords import hash_password_sync
from sneakerd.store import Store, open_store
from tests.api.conftest import Api
from tests.api.helpers import ISO_MS, assert_error, assert_validation
from tests.api.test_ops import load_spec, operations

JSON_TYPE = "application/json"

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


@pytest.mark.parametrize(
    "sub",
    [
        "99999999999999999999999999",
        "9223372036854775808",
        " 24",
        "24 ",
        "\uff12\uff14",
        "+24",
        "0x18",
        "024",
    ],
)
async def test_a_signed_token_whose_sub_is_not_a_plain_user_id_is_unauthorized(
    api: Api, sub: str
) -> None:
    """A `sub` the server signed would never say: too large for an id (the database refused
    it, a 500), or a digit string `int()` takes but no id is written as (spaces, full-width
    digits, a sign). Each is 401, and the next shopper's first request is not hurt by it."""
    token = jwt.encode({**claims(1), "sub": sub}, api.server.jwt_secret, algorithm="HS256")
    admin = await api.admin()
    drop = await api.drop(admin)
    for method, path, body in (
        ("GET", "/api/users/profile", None),
        ("GET", "/api/reservations/user", None),
        ("POST", "/api/reservations", {"dropId": drop["id"]}),
    ):
        status, answer, _ = await api.call(method, path, token=token, json=body)
        assert_error(status, answer, 401, "unauthorized")
    user, _ = await api.register()
    fresh = jwt.encode(claims(user["id"]), api.server.jwt_secret, algorithm="HS256")
    status, answer, _ = await api.call(
        "POST", "/api/reservations", token=fresh, json={"dropId": drop["id"]}
    )
    assert status == 201, answer


async def test_profile_with_a_freshly_forged_valid_token_is_accepted(api: Api) -> None:
    """The forging helpers above are sound: the same claims, signed right, do work."""
    user, _ = await api.register()
    token = jwt.encode(claims(user["id"]), api.server.jwt_secret, algorithm="HS256")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert status == 200, body
    assert body["user"]["id"] == user["id"]


# --- look-alike emails (issue 11 item 3) -------------------------------------------------------
#
# One identity per email: Unicode NFKC, then case folding. So a case or width variant is the
# same account, an accent makes another account, and invisible characters are refused.


def fullwidth(text: str) -> str:
    """The text in fullwidth forms (U+FF01-FF5E), which NFKC maps back to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def alice(api: Api) -> str:
    """A fresh local part that starts with `alice` (the suffix is lowercase ASCII)."""
    return "alice" + api.unique("")


async def register_as(api: Api, email: str) -> dict[str, Any]:
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={"username": api.unique(), "email": email, "password": PASSWORD},
    )
    assert status == 201, body
    return dict(body["user"])


async def login_as(api: Api, email: str, password: str = PASSWORD) -> tuple[int, Any]:
    status, body, _ = await api.call(
        "POST", "/api/users/login", json={"email": email, "password": password}
    )
    return status, body


@pytest.mark.parametrize(
    "look_alike",
    [
        pytest.param(lambda local: "ÁLICE" + local[5:].upper(), id="uppercase-accented"),
        pytest.param(lambda local: "Álice" + local[5:], id="capital-accented"),
        pytest.param(lambda local: "alicé" + local[5:], id="accent-on-e"),
        pytest.param(lambda local: "alic\u0065\u0301" + local[5:], id="decomposed-accent"),
    ],
)
async def test_an_accented_look_alike_does_not_log_in_as_the_plain_account(
    api: Api, look_alike: Any
) -> None:
    local = alice(api)
    await register_as(api, f"{local}@example.com")
    status, body = await login_as(api, f"{look_alike(local)}@example.com")
    assert_error(status, body, 401, "invalid_credentials")


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda local: local.upper(), id="uppercase"),
        pytest.param(lambda local: fullwidth(local[0]) + local[1:], id="fullwidth-a"),
        pytest.param(lambda local: fullwidth(local), id="fullwidth-all"),
        pytest.param(lambda local: " " + local, id="leading-space"),
    ],
)
async def test_a_case_or_width_variant_logs_in_to_the_same_account(api: Api, variant: Any) -> None:
    local = alice(api)
    user = await register_as(api, f"{local}@example.com")
    status, body = await login_as(api, f"{variant(local)}@example.com")
    assert status == 200, body
    assert body["user"]["id"] == user["id"]


async def test_uppercase_accented_email_logs_in_to_the_lowercase_accented_account(
    api: Api,
) -> None:
    local = "álice" + api.unique("")
    user = await register_as(api, f"{local}@example.com")
    for variant in (local.upper(), "Álice" + local[5:], "a\u0301lice" + local[5:]):
        status, body = await login_as(api, f"{variant}@EXAMPLE.com")
        assert status == 200, (variant, body)
        assert body["user"]["id"] == user["id"]


async def test_register_stores_the_normalised_email(api: Api) -> None:
    local = "ÁLICE" + api.unique("").upper()
    user = await register_as(api, f"{local}@{fullwidth('EXAMPLE')}.COM")
    assert user["email"] == f"{local.casefold()}@example.com"
    status, body = await login_as(api, user["email"])
    assert status == 200, body
    assert body["user"] == user


@pytest.mark.parametrize("accented_first", [True, False], ids=["dávid-first", "david-first"])
async def test_accented_and_plain_emails_are_two_accounts(api: Api, accented_first: bool) -> None:
    suffix = api.unique("")
    plain, accented = f"david{suffix}@example.com", f"dávid{suffix}@example.com"
    first, second = (accented, plain) if accented_first else (plain, accented)
    one = await register_as(api, first)
    other = await register_as(api, second)
    assert one["id"] != other["id"]
    assert (one["email"], other["email"]) == (first, second)
    for email, user in ((first, one), (second, other)):
        status, body = await login_as(api, email)
        assert status == 200, body
        assert body["user"]["id"] == user["id"]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(str.upper, id="uppercase"),
        pytest.param(fullwidth, id="fullwidth"),
    ],
)
async def test_registering_a_variant_of_a_taken_email_is_email_taken(
    api: Api, variant: Any
) -> None:
    email = f"david{api.unique('')}@example.com"
    await register_as(api, email)
    status, body, _ = await api.call(
        "POST",
        "/api/users/register",
        json={"username": api.unique(), "email": variant(email), "password": PASSWORD},
    )
    assert_error(status, body, 409, "email_taken")


INVISIBLE = [
    pytest.param("\u200b", id="zero-width-space"),
    pytest.param("\u200d", id="zero-width-joiner"),
    pytest.param("\u2060", id="word-joiner"),
    pytest.param("\ufeff", id="byte-order-mark"),
    pytest.param("\u00ad", id="soft-hyphen"),
    pytest.param("\u034f", id="combining-grapheme-joiner"),
    pytest.param("\u2028", id="line-separator"),
    pytest.param("\u2029", id="paragraph-separator"),
    pytest.param("\n", id="newline"),
    pytest.param("\x00", id="nul"),
    pytest.param("\x7f", id="delete"),
]


@pytest.mark.parametrize("where", ["end", "middle"])
@pytest.mark.parametrize("char", INVISIBLE)
async def test_login_with_an_invisible_character_in_the_email_is_a_validation_error(
    api: Api, char: str, where: str
) -> None:
    local = alice(api)
    await register_as(api, f"{local}@example.com")
    email = f"{local}@example.com{char}" if where == "end" else f"ali{char}{local[3:]}@example.com"
    status, body = await login_as(api, email)
    assert_validation(status, body, "email")


@pytest.mark.parametrize("char", INVISIBLE)
async def test_register_with_an_invisible_character_in_the_email_is_a_validation_error(
    api: Api, char: str
) -> None:
    ident = {**new_identity(api), "email": f"ali{char}ce{api.unique('')}@example.com"}
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert_validation(status, body, "email")


async def test_auth_limit_counts_look_alikes_of_one_account_in_one_bucket(
    start_api: Callable[..., Api],
) -> None:
    """Each attempt comes from another loopback address, so the per-IP buckets stay full and
    only the per-account bucket can refuse the fourth."""
    api = start_api(RATE_LIMIT_AUTH="3")
    local = alice(api)
    attempts = [
        f"{fullwidth(local)}@example.com",
        f"{local.upper()}@Example.com",
        f" {local}@example.com ",
    ]
    for n, email in enumerate(attempts, start=2):
        status, body = await login_from(api, f"127.0.0.{n}", email)
        assert_error(status, body, 401, "invalid_credentials")
    # Another identity (an accent) has a bucket of its own...
    status, body = await login_from(api, "127.0.0.6", f"alicé{local[5:]}@example.com")
    assert_error(status, body, 401, "invalid_credentials")
    # ...but the account itself, from a fresh address, is out of attempts.
    status, body = await login_from(api, "127.0.0.7", f"{local}@example.com")
    assert_error(status, body, 429, "rate_limited")


async def login_from(api: Api, address: str, email: str) -> tuple[int, Any]:
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        return await login_as(Api(session, api.server), email, "not-the-password")


def cli(api: Api, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The operator CLI on the test server's database, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "sneakerd", *args, "--db", api.server.db_url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=api.server.cwd,
        env=api.server.env,
    )


async def test_cli_create_admin_keeps_the_identity_of_the_email(api: Api) -> None:
    local = "ÁDMIN" + api.unique("").upper()
    done = cli(
        api,
        "users",
        "create-admin",
        "--json",
        "--email",
        f"{fullwidth(local)}@Example.com",
        "--username",
        api.unique("admin"),
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    identity = f"{local.casefold()}@example.com"
    assert json.loads(done.stdout)["user"]["email"] == identity
    status, body = await login_as(api, identity)
    assert status == 200, body
    assert body["user"]["role"] == "admin"
    status, body = await login_as(api, identity.replace("á", "a"))
    assert_error(status, body, 401, "invalid_credentials")


async def test_cli_create_admin_refuses_an_email_with_an_invisible_character(api: Api) -> None:
    email = f"admin{api.unique('')}@example.com\u200b"
    done = cli(
        api,
        "users",
        "create-admin",
        "--email",
        email,
        "--username",
        api.unique("admin"),
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "not an email address" in done.stderr and "invisible" in done.stderr
    status, body = await login_as(api, email.rstrip("\u200b"))
    assert_error(status, body, 401, "invalid_credentials")


async def test_cli_promote_finds_the_account_by_its_identity_only(api: Api) -> None:
    local = alice(api)
    await register_as(api, f"{local}@example.com")
    accented = cli(api, "users", "promote", f"alicé{local[5:]}@example.com")
    assert accented.returncode == 1 and "no user" in accented.stderr, accented.stderr
    done = cli(api, "users", "promote", "--json", f"{fullwidth(local.upper())}@EXAMPLE.COM")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"]["email"] == f"{local}@example.com"
    status, body = await login_as(api, f"{local}@example.com")
    assert status == 200 and body["user"]["role"] == "admin", body


# --- passwords (issue 11 item 9) --------------------------------------------------------------

LONG_PASSWORD = "correct horse battery staple, " * 3  # 90 bytes: over bcrypt's 72


def cost_of(password_hash: str) -> int:
    """The cost a bcrypt hash says it was made at: "$2b$12$..." is 12."""
    return int(password_hash.split("$")[2])


def first_scheme_prehash(password: str) -> str:
    """The first scheme's pre-hash of a password over 72 bytes: base64(sha256(password))."""
    return base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


@contextlib.asynccontextmanager
async def server_store(api: Api) -> AsyncIterator[Store]:
    """The test server's database, opened beside it, as an operator with a shell would."""
    store = await open_store(api.server.db_url)
    try:
        yield store
    finally:
        await store.close()


async def stored_hash(api: Api, email: str) -> str:
    async with server_store(api) as store:
        found = await store.user_by_email(email)
    assert found is not None, email
    return found[1]


async def user_with_hash(api: Api, password_hash: str) -> str:
    """A customer whose stored hash is `password_hash` (made elsewhere); returns the email."""
    name = api.unique()
    email = f"{name}@example.com"
    async with server_store(api) as store:
        await store.create_user(name, email, password_hash, Role.CUSTOMER, int(time.time() * 1000))
    return email


async def test_the_sha256_text_of_a_long_password_does_not_log_in(api: Api) -> None:
    ident = {**new_identity(api), "password": LONG_PASSWORD}
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert status == 201, body
    status, body = await login_as(api, ident["email"], first_scheme_prehash(LONG_PASSWORD))
    assert_error(status, body, 401, "invalid_credentials")
    status, body = await login_as(api, ident["email"], LONG_PASSWORD)
    assert status == 200, body


async def test_a_first_scheme_hash_logs_in_with_its_long_password_and_is_replaced(
    api: Api,
) -> None:
    old_hash = bcrypt.hashpw(
        first_scheme_prehash(LONG_PASSWORD).encode(), bcrypt.gensalt(4)
    ).decode()
    email = await user_with_hash(api, old_hash)
    status, body = await login_as(api, email, first_scheme_prehash(LONG_PASSWORD))
    assert_error(status, body, 401, "invalid_credentials")
    assert await stored_hash(api, email) == old_hash
    status, body = await login_as(api, email, LONG_PASSWORD)
    assert status == 200, body
    new_hash = await stored_hash(api, email)
    assert new_hash != old_hash
    assert not bcrypt.checkpw(first_scheme_prehash(LONG_PASSWORD).encode(), new_hash.encode())
    for password, expected in ((LONG_PASSWORD, 200), (first_scheme_prehash(LONG_PASSWORD), 401)):
        status, body = await login_as(api, email, password)
        assert status == expected, body


@pytest.mark.parametrize("cost", [5, 6])
async def test_login_rehashes_a_hash_of_another_cost_at_bcrypt_rounds(api: Api, cost: int) -> None:
    """The server runs BCRYPT_ROUNDS=4: a hash made at another cost converges on it."""
    email = await user_with_hash(api, hash_password_sync(PASSWORD, cost))
    status, body = await login_as(api, email, "wrong-password")
    assert_error(status, body, 401, "invalid_credentials")
    assert cost_of(await stored_hash(api, email)) == cost  # a wrong password changes nothing
    status, body = await login_as(api, email)
    assert status == 200, body
    assert cost_of(await stored_hash(api, email)) == 4
    status, body = await login_as(api, email)
    assert status == 200, body


async def test_login_keeps_a_hash_of_the_configured_cost(api: Api) -> None:
    user, _ = await api.register()
    before = await stored_hash(api, user["email"])
    status, body = await login_as(api, user["email"])
    assert status == 200, body
    assert await stored_hash(api, user["email"]) == before


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x9f"])
async def test_a_password_with_a_control_character_is_a_validation_error(
    api: Api, char: str
) -> None:
    ident = {**new_identity(api), "password": f"hunter2{char}hunter2"}
    status, body, _ = await api.call("POST", "/api/users/register", json=ident)
    assert_validation(status, body, "password")
    user, _ = await api.register()
    status, body = await login_as(api, user["email"], f"{PASSWORD}{char}")
    assert_validation(status, body, "password")


# --- PUT /api/users/profile -------------------------------------------------------------------


async def put_profile(api: Api, token: str | None, payload: Any) -> tuple[int, Any]:
    status, body, _ = await api.call("PUT", "/api/users/profile", token=token, json=payload)
    return status, body


async def test_put_profile_changes_the_username(api: Api) -> None:
    user, token = await api.register()
    new_name = api.unique("renamed")
    status, body = await put_profile(api, token, {"username": new_name})
    assert status == 200, body
    assert set(body) == {"user"}
    assert body["user"] == {**user, "username": new_name}
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert status == 200 and body["user"]["username"] == new_name, body
    status, body = await login_as(api, user["email"])
    assert status == 200 and body["user"]["username"] == new_name, body


async def test_put_profile_changes_the_password_given_the_current_one(api: Api) -> None:
    user, token = await api.register()
    status, body = await put_profile(
        api, token, {"password": "a-new-password", "currentPassword": PASSWORD}
    )
    assert status == 200, body
    assert body["user"] == user
    assert "a-new-password" not in repr(body) and "$2b$" not in repr(body)
    status, body = await login_as(api, user["email"], "a-new-password")
    assert status == 200, body
    status, body = await login_as(api, user["email"], PASSWORD)
    assert_error(status, body, 401, "invalid_credentials")


async def test_put_profile_changes_both_at_once(api: Api) -> None:
    user, token = await api.register()
    new_name = api.unique("both")
    status, body = await put_profile(
        api,
        token,
        {"username": new_name, "password": LONG_PASSWORD, "currentPassword": PASSWORD},
    )
    assert status == 200, body
    assert body["user"]["username"] == new_name
    status, body = await login_as(api, user["email"], LONG_PASSWORD)
    assert status == 200 and body["user"]["username"] == new_name, body


async def test_put_profile_with_a_wrong_current_password_is_invalid_credentials(
    api: Api,
) -> None:
    user, token = await api.register()
    before = await stored_hash(api, user["email"])
    new_name = api.unique("nope")
    status, body = await put_profile(
        api,
        token,
        {"username": new_name, "password": "a-new-password", "currentPassword": "not-it-at-all"},
    )
    assert_error(status, body, 401, "invalid_credentials")
    assert await stored_hash(api, user["email"]) == before
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert body["user"] == user
    status, body = await login_as(api, user["email"])
    assert status == 200, body


async def test_put_profile_password_without_the_current_one_is_a_validation_error(
    api: Api,
) -> None:
    user, token = await api.register()
    status, body = await put_profile(api, token, {"password": "a-new-password"})
    assert_validation(status, body, "currentPassword")
    status, body = await login_as(api, user["email"])
    assert status == 200, body


async def test_put_profile_to_a_taken_username_is_username_taken(api: Api) -> None:
    other, _ = await api.register()
    user, token = await api.register()
    for taken in (other["username"], other["username"].upper()):
        status, body = await put_profile(api, token, {"username": taken})
        assert_error(status, body, 409, "username_taken")
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert body["user"] == user


async def test_put_profile_may_keep_or_recase_the_own_username(api: Api) -> None:
    user, token = await api.register()
    for name in (user["username"], user["username"].upper()):
        status, body = await put_profile(api, token, {"username": name})
        assert status == 200, body
        assert body["user"]["username"] == name


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "bad name"}, "username"),
        ({"username": "ünïcode"}, "username"),
        ({"username": ""}, "username"),
        ({"username": None}, "username"),
        ({"username": 12345}, "username"),
        ({"password": "p" * 7, "currentPassword": PASSWORD}, "password"),
        ({"password": "p" * 129, "currentPassword": PASSWORD}, "password"),
        ({"password": "hunter2\x00hunter2", "currentPassword": PASSWORD}, "password"),
        ({"password": "a-new-password", "currentPassword": ""}, "currentPassword"),
        ({"email": "new@example.com"}, "email"),
        ({}, "_schema"),
    ],
)
async def test_put_profile_validates_like_register(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    user, token = await api.register()
    status, body = await put_profile(api, token, payload)
    assert_validation(status, body, field)
    status, body, _ = await api.call("GET", "/api/users/profile", token=token)
    assert body["user"] == user


@pytest.mark.parametrize("token", [None, "garbage"])
async def test_put_profile_without_a_valid_token_is_unauthorized(
    api: Api, token: str | None
) -> None:
    status, body = await put_profile(api, token, {"username": api.unique()})
    assert_error(status, body, 401, "unauthorized")


async def test_put_profile_for_a_user_that_does_not_exist_is_unauthorized(api: Api) -> None:
    token = jwt.encode(claims(987_654_322), api.server.jwt_secret, algorithm="HS256")
    status, body = await put_profile(api, token, {"username": api.unique()})
    assert_error(status, body, 401, "unauthorized")


async def test_put_profile_body_must_be_a_json_object(api: Api) -> None:
    _, token = await api.register()
    status, body, _ = await api.call(
        "PUT", "/api/users/profile", token=token, data=b"{", headers={"Content-Type": JSON_TYPE}
    )
    assert_error(status, body, 400, "bad_request")
    status, body = await put_profile(api, token, ["username"])
    assert_error(status, body, 422, "validation_error")


async def test_wrong_current_passwords_count_against_the_accounts_sign_in_limit(
    start_api: Callable[..., Api],
) -> None:
    api = start_api(RATE_LIMIT_AUTH="3")
    user, token = await api.register()  # one attempt from this address
    wrong = {"password": "a-new-password", "currentPassword": "not-it-at-all"}
    for _ in range(2):
        status, body = await put_profile(api, token, wrong)
        assert_error(status, body, 401, "invalid_credentials")
    status, body = await put_profile(api, token, {**wrong, "currentPassword": PASSWORD})
    assert_error(status, body, 429, "rate_limited")
    # The account's bucket, not this address's: a login from elsewhere is refused too.
    status, body = await login_from(api, "127.0.0.9", user["email"])
    assert_error(status, body, 429, "rate_limited")


async def test_put_profile_is_in_the_openapi_document(api: Api) -> None:
    spec = await load_spec(api)
    operation = operations(spec)[("put", "/api/users/profile")]
    assert operation.get("security"), operation
    assert {"200", "401", "409", "422"} <= set(map(str, operation["responses"])), operation
    body = operation["requestBody"]["content"]["application/json"]  # the OpenAPI 3 document
    name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][name]
    assert {"username", "password", "currentPassword"} <= set(schema["properties"]), schema
    assert schema.get("additionalProperties") is False
