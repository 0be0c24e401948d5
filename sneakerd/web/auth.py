"""Bearer tokens (PyJWT, HS256 only) and who is asking.

Tokens carry docs/API.md's claims: `sub` (the user id as a string), `role`, `iat`, `exp`. Decoding
pins the algorithm list to HS256, so `alg: none`, RS/HS confusion and other algorithms are
refused, and requires every claim, so a token without `exp` never validates.

One token is not a user's: the operator CLI's (`sub` and `act` both `cli`, role admin, signed
with the same secret, minted by `cli/server_link.py`), which changes a drop through this
server's actor while it runs. It is an admin that is no user (`CLI_USER_ID`), good for admin
requests only (`routes.common.principal` refuses it elsewhere).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import jwt
from aiohttp import web

from sneakerd.clock import Clock
from sneakerd.domain.model import Role, User
from sneakerd.web.hs256 import FastHS256
from sneakerd.web.problems import ApiError

ALGORITHM = "HS256"


CLI_SUB = "cli"
"""The `sub` of the operator CLI's tokens: the CLI is no user (see `cli/server_link.py`)."""
CLI_USER_ID = 0
"""The CLI's principal's user id: no user has it, so nothing a customer does can be done by
it (the user check refuses id 0), and an admin write by it is logged as `cli`."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_cli(self) -> bool:
        """The operator CLI, changing a drop through this server's actor."""
        return self.user_id == CLI_USER_ID


class Tokens:
    """Issues tokens and verifies them, reading the time from the injected clock.

    PyJWT, which decides every token not of our canonical shape (the tokens this server
    issues never reach it, see `FastHS256`), checks `exp` against the system time itself, so
    a token it takes is checked against the clock again: with a `ManualClock` the test's time
    decides, and with the `SystemClock` the two agree.
    """

    def __init__(
        self,
        secret: str,
        ttl_seconds: int,
        *,
        clock: Clock,
        cache_size: int = 100_000,
    ) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock
        self._fast = FastHS256(secret, clock)
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[int, str, int]] = OrderedDict()
        """Tokens whose signature and claims checked out: (user id, role, exp). Verifying is
        deterministic, so a token good once stays good until `exp`, and a shopper's client
        sends the same token with every request of a drop. Entries hold only ints and strings,
        so the garbage collector stops tracking them: a crowd's worth of cached tokens would
        otherwise lengthen every full collection."""

    def issue(self, user: User) -> str:
        now = self._clock.now_ms() // 1000  # the claims are whole epoch seconds
        claims = {"sub": str(user.id), "role": user.role.value, "iat": now, "exp": now + self._ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            user_id, role, expires = known
            if self._clock.now_ms() < expires * 1000:
                return Principal(user_id, Role(role))
            del self._verified[token]
        principal, expires = self._decode(token)
        self._verified[token] = (principal.user_id, principal.role.value, expires)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        try:
            claims = self._fast.claims(token)
            if claims is None:  # not one of our canonical tokens: PyJWT decides
                claims = jwt.decode(
                    token,
                    self._secret,
                    algorithms=[ALGORITHM],
                    options={"require": ["sub", "role", "iat", "exp"]},
                )
            role = Role(claims["role"])
            if claims["sub"] == CLI_SUB and claims.get("act") == CLI_SUB and role is Role.ADMIN:
                user_id = CLI_USER_ID  # the operator CLI (it holds the secret, as we do)
            else:
                user_id = user_id_of(claims["sub"])
            expires = int(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise unauthorized("The token is invalid or has expired") from None
        # PyJWT checked `exp` against the system time; the injected clock has the last word,
        # as it has on the fast path and in the cache.
        if self._clock.now_ms() >= expires * 1000:
            raise unauthorized("The token is invalid or has expired")
        return Principal(user_id, role), expires


MAX_ID = 2**63 - 1
"""The largest id either database stores (a signed 64-bit integer)."""


def user_id_of(sub: object) -> int:
    """The user id a `sub` claim names: the decimal digits this server writes (`str(id)`),
    nothing `int()` would also take (spaces, a sign, full-width digits, underscores), and no
    number past what the database stores, which it would refuse with an error rather than an
    empty answer. Raises `ValueError` for anything else (the token is then refused)."""
    if not isinstance(sub, str) or not (0 < len(sub) <= 19 and sub.isascii() and sub.isdigit()):
        raise ValueError("not a user id")
    user_id = int(sub)
    if not 1 <= user_id <= MAX_ID or sub[0] == "0":
        raise ValueError("not a user id")
    return user_id


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send Authorization: Bearer <token>")
    return token.strip()


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "Only an admin may do this")


__all__ = ["Principal", "Tokens", "bearer", "forbidden", "unauthorized"]
