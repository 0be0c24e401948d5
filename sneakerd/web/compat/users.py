"""/compat/api/users: register, login, read and change the profile, through the native
routes' own steps (`sneakerd.web.routes.users`: rate limits, hashing, the store's checks)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import ValidationError

from sneakerd.domain.accounts import email_identity_or_none
from sneakerd.web import keys
from sneakerd.web.compat.bodies import LOGIN, PROFILE, REGISTER
from sneakerd.web.compat.envelope import ok
from sneakerd.web.compat.views import user_view
from sneakerd.web.jsonio import read_object
from sneakerd.web.problems import ApiError
from sneakerd.web.routes.common import principal
from sneakerd.web.routes.users import change_profile, sign_in, sign_up


async def register(request: web.Request) -> web.Response:
    user, token = await sign_up(request, REGISTER.load(await read_object(request)))
    data = {"user": user_view(user), "token": token}
    return ok(data, status=201, message="User registered successfully")


async def login(request: web.Request) -> web.Response:
    user, token = await sign_in(request, LOGIN.load(await read_object(request)))
    return ok({"user": user_view(user), "token": token}, message="Login successful")


async def profile(request: web.Request) -> web.Response:
    who = principal(request)
    user = await request.app[keys.STORE].user_by_id(who.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    return ok({"user": user_view(user)})


async def update_profile(request: web.Request) -> web.Response:
    who = principal(request)
    body = await read_object(request)
    data = PROFILE.load(body)
    if "email" in body:
        await _same_email(request, who.user_id, body["email"])
    user = await change_profile(request, who, data)
    return ok({"user": user_view(user)}, message="Profile updated successfully")


async def _same_email(request: web.Request, user_id: int, email: object) -> None:
    """An `email` the original's profile form sends along must be the account's own: an
    account's email does not change here, and ignoring a new one would tell the shopper it
    had."""
    current = await request.app[keys.STORE].user_by_id(user_id)
    if current is None:
        raise ApiError(401, "unauthorized", "The token's user does not exist")
    if not isinstance(email, str) or email_identity_or_none(email) != current.email:
        raise ValidationError({"email": ["The email of an account cannot be changed."]})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/users/register", register)
    app.router.add_post(f"{prefix}/users/login", login)
    app.router.add_get(f"{prefix}/users/profile", profile)
    app.router.add_put(f"{prefix}/users/profile", update_profile)
