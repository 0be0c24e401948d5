"""POST /api/users/register, POST /api/users/login, GET and PUT /api/users/profile.

Emails arrive already turned into their account identity by the schemas
(`sneakerd.domain.accounts`), so the lookup, the uniqueness check and the per-account rate-limit
bucket all see one form: look-alike spellings cannot open another account or dodge its limit.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from sneakerd import errors
from sneakerd.domain.model import Role, User
from sneakerd.passwords import check_password, decoy_hash, hash_password
from sneakerd.views import user_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, request_schema, response_schema
from sneakerd.web.auth import Principal
from sneakerd.web.clientaddr import client_address
from sneakerd.web.jsonio import json_response, read_object
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import BEARER, errors_doc, principal
from sneakerd.web.schemas import (
    LOGIN,
    REGISTER,
    UPDATE_PROFILE,
    AuthOut,
    LoginRequest,
    ProfileOut,
    ProfileUpdateRequest,
    RegisterRequest,
)

log = logging.getLogger(__name__)


async def _limit(request: web.Request, identity: str) -> None:
    await request.app[keys.AUTH_LIMIT].check(("ip", client_address(request)), ("account", identity))


def _wrong_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "Wrong email or password")


async def _rehash(request: web.Request, user: User, old_hash: str, password: str) -> None:
    """Store a hash of the current scheme and cost. Best effort: the login has succeeded, and
    a failure here only leaves the old hash for the next login to replace."""
    app = request.app
    try:
        new_hash = await hash_password(password, app[keys.SETTINGS].bcrypt_rounds)
        await app[keys.STORE].replace_password_hash(user.id, old_hash, new_hash)
    except errors.Unavailable:
        log.warning("could not re-hash the password of user %s; the next login retries", user.id)


@docs(
    tags=["users"],
    summary="Register a customer account",
    responses=errors_doc(400, 413, 422, 429, 409, conflicts="email_taken, username_taken"),
)
@request_schema(RegisterRequest)
@response_schema(AuthOut, 201, description="The new user and a bearer token")
async def register(request: web.Request) -> web.Response:
    user, token = await sign_up(request, REGISTER.load(await read_object(request)))
    return json_response({"user": user_view(user), "token": token}, 201)


async def sign_up(request: web.Request, data: dict[str, Any]) -> tuple[User, str]:
    """A new customer and their token, from a body `REGISTER` loaded (also the /compat
    mount's register)."""
    email = data["email"]
    await _limit(request, email)
    app = request.app
    password_hash = await hash_password(data["password"], app[keys.SETTINGS].bcrypt_rounds)
    user = await app[keys.STORE].create_user(
        data["username"], email, password_hash, Role.CUSTOMER, app[keys.CLOCK].now_ms()
    )
    app[keys.KNOWN_USERS].remember(user)
    return user, app[keys.TOKENS].issue(user)


@docs(
    tags=["users"],
    summary="Log in with email and password",
    responses=errors_doc(400, 401, 413, 422, 429),
)
@request_schema(LoginRequest)
@response_schema(AuthOut, 200, description="The user and a bearer token")
async def login(request: web.Request) -> web.Response:
    user, token = await sign_in(request, LOGIN.load(await read_object(request)))
    return json_response({"user": user_view(user), "token": token})


async def sign_in(request: web.Request, data: dict[str, Any]) -> tuple[User, str]:
    """The user a body `LOGIN` loaded names and a new token (also the /compat mount's login);
    raises 401 `invalid_credentials` for a wrong email or password."""
    email = data["email"]
    await _limit(request, email)
    app = request.app
    rounds = app[keys.SETTINGS].bcrypt_rounds
    found = await app[keys.STORE].user_by_email(email)
    # An unknown email costs one bcrypt at the configured cost, as every account's hash does
    # once re-hashed below, so timing does not tell which emails have accounts.
    hashed = found[1] if found else decoy_hash(rounds)
    verdict = await check_password(data["password"], hashed, rounds)
    if not verdict.ok or found is None:
        raise _wrong_credentials()
    user = found[0]
    if verdict.rehash:
        await _rehash(request, user, hashed, data["password"])
    app[keys.KNOWN_USERS].remember(user)
    return user, app[keys.TOKENS].issue(user)


@docs(tags=["users"], summary="The signed-in user", security=BEARER, responses=errors_doc(401))
@response_schema(ProfileOut, 200)
async def profile(request: web.Request) -> web.Response:
    who = principal(request)
    user = await request.app[keys.STORE].user_by_id(who.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    return json_response({"user": user_view(user)})


@docs(
    tags=["users"],
    summary="Change the signed-in user's username and/or password",
    description=(
        "Give `username`, `password` or both. A new `password` needs `currentPassword`; when "
        "`currentPassword` is given it is checked (a wrong one is 401 `invalid_credentials`, "
        "nothing changes, and it counts against the account's sign-in limit). The same rules "
        "as registration apply to both fields. Tokens already issued stay valid."
    ),
    security=BEARER,
    responses=errors_doc(400, 401, 413, 422, 429, 409, conflicts="username_taken"),
)
@request_schema(ProfileUpdateRequest)
@response_schema(ProfileOut, 200, description="The user as it is now")
async def update_profile(request: web.Request) -> web.Response:
    who = principal(request)
    user = await change_profile(request, who, UPDATE_PROFILE.load(await read_object(request)))
    return json_response({"user": user_view(user)})


async def change_profile(request: web.Request, who: Principal, data: dict[str, Any]) -> User:
    """The user after the change a body `UPDATE_PROFILE` loaded (also the /compat mount's)."""
    app = request.app
    store = app[keys.STORE]
    current = await store.user_by_id(who.user_id)
    if current is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    rounds = app[keys.SETTINGS].bcrypt_rounds
    if "current_password" in data:  # required with `password`; checked whenever it is given
        await _limit(request, current.email)
        found = await store.user_by_email(current.email)
        if found is None:
            raise ApiError(401, "unauthorized", "The token's user does not exist")
        if not (await check_password(data["current_password"], found[1], rounds)).ok:
            raise ApiError(401, "invalid_credentials", "The current password is wrong")
    password_hash = await hash_password(data["password"], rounds) if "password" in data else None
    user = await store.update_user(
        who.user_id, username=data.get("username"), password_hash=password_hash
    )
    if user is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    app[keys.KNOWN_USERS].remember(user)
    return user


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/users/register", register)
    app.router.add_post("/api/users/login", login)
    app.router.add_get("/api/users/profile", profile)
    app.router.add_put("/api/users/profile", update_profile)
