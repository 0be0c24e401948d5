"""POST /api/users/register, POST /api/users/login, GET /api/users/profile."""

from __future__ import annotations

from aiohttp import web

from sneakerd.domain.model import Role
from sneakerd.passwords import decoy_hash, hash_password, verify_password
from sneakerd.views import user_view
from sneakerd.web import keys
from sneakerd.web.apidoc import docs, request_schema, response_schema
from sneakerd.web.clientaddr import client_address
from sneakerd.web.jsonio import json_response, read_object
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import BEARER, errors_doc, principal
from sneakerd.web.schemas import LOGIN, REGISTER, AuthOut, LoginRequest, ProfileOut, RegisterRequest


def _limit(request: web.Request, email: str) -> None:
    request.app[keys.AUTH_LIMIT].check(("ip", client_address(request)), ("account", email))


@docs(
    tags=["users"],
    summary="Register a customer account",
    responses=errors_doc(400, 413, 422, 429, 409, conflicts="email_taken, username_taken"),
)
@request_schema(RegisterRequest)
@response_schema(AuthOut, 201, description="The new user and a bearer token")
async def register(request: web.Request) -> web.Response:
    data = REGISTER.load(await read_object(request))
    email = data["email"].strip().lower()
    _limit(request, email)
    app = request.app
    password_hash = await hash_password(data["password"], app[keys.SETTINGS].bcrypt_rounds)
    user = await app[keys.STORE].create_user(
        data["username"], email, password_hash, Role.CUSTOMER, app[keys.CLOCK].now_ms()
    )
    app[keys.KNOWN_USERS].remember(user)
    return json_response({"user": user_view(user), "token": app[keys.TOKENS].issue(user)}, 201)


@docs(
    tags=["users"],
    summary="Log in with email and password",
    responses=errors_doc(400, 401, 413, 422, 429),
)
@request_schema(LoginRequest)
@response_schema(AuthOut, 200, description="The user and a bearer token")
async def login(request: web.Request) -> web.Response:
    data = LOGIN.load(await read_object(request))
    email = data["email"].strip().lower()
    _limit(request, email)
    app = request.app
    found = await app[keys.STORE].user_by_email(email)
    hashed = found[1] if found else decoy_hash(app[keys.SETTINGS].bcrypt_rounds)
    if not await verify_password(data["password"], hashed) or found is None:
        raise ApiError(401, "invalid_credentials", "Wrong email or password")
    user = found[0]
    app[keys.KNOWN_USERS].remember(user)
    return json_response({"user": user_view(user), "token": app[keys.TOKENS].issue(user)})


@docs(tags=["users"], summary="The signed-in user", security=BEARER, responses=errors_doc(401))
@response_schema(ProfileOut, 200)
async def profile(request: web.Request) -> web.Response:
    who = principal(request)
    user = await request.app[keys.STORE].user_by_id(who.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    return json_response({"user": user_view(user)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/users/register", register)
    app.router.add_post("/api/users/login", login)
    app.router.add_get("/api/users/profile", profile)
