"""bcrypt hashing, always off the event loop: one hash costs tens of milliseconds by design.

bcrypt reads at most 72 bytes, so a longer password is pre-hashed first. The pre-hashed form
must never be something a person can type, or it becomes a second password: the first scheme
(`base64(sha256(password))`, 44 printable characters) let that text log in as the long
password. The current pre-hash is therefore domain-separated:

- typed passwords may not hold control characters (the domain's rule,
  `sneakerd.domain.accounts.typed_password_problem`), and the pre-hash starts with one
  (`\\x01`), so no typed password is ever bcrypt's input for a pre-hash;
- the digest is an HMAC under a fixed, scheme-naming key, so it is not a plain SHA-256 that
  another system (or a leak of one) may hold;
- a typed password with the exact shape of the first scheme's output is pre-hashed too, so it
  cannot open a hash that the first scheme made of someone's long password.

Hashes made by the first scheme still verify for their real (long) password: only an input
over 72 bytes is ever tried against it, and such a login reports `rehash` so the caller stores
a hash of the current scheme. A login also reports `rehash` when the hash's cost is not the
configured one, so every hash converges on `BCRYPT_ROUNDS` and a login costs the same for
every account and for an unknown email (which verifies against `decoy_hash` of that cost).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import bcrypt

from sneakerd.domain.accounts import typed_password_problem

MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; longer inputs are pre-hashed below

_PREHASH_PREFIX = b"\x01"
_PREHASH_KEY = b"sneakerd bcrypt pre-hash v2"
_LEGACY_SHAPE = re.compile(rb"[A-Za-z0-9+/]{43}=")
"""What the first scheme's pre-hash looks like: base64 of a 32-byte digest."""
_COST = re.compile(r"^\$2[aby]?\$(\d\d)\$")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    rehash: bool = False
    """The password is right and its stored hash should be replaced by `hash_password`'s."""


def _prepare(password: str) -> bytes:
    raw = password.encode()
    if len(raw) > MAX_PASSWORD_BYTES or _LEGACY_SHAPE.fullmatch(raw):
        digest = hmac.new(_PREHASH_KEY, raw, hashlib.sha256).digest()
        return _PREHASH_PREFIX + base64.b64encode(digest)
    return raw


def _legacy_prepare(raw: bytes) -> bytes:
    """The first scheme's pre-hash; only ever applied to an input over 72 bytes."""
    return base64.b64encode(hashlib.sha256(raw).digest())


def hash_cost(hashed: str) -> int | None:
    """The bcrypt cost written in a hash ("$2b$12$..." is 12); None if it is not bcrypt."""
    match = _COST.match(hashed)
    return int(match.group(1)) if match else None


def hash_password_sync(password: str, rounds: int) -> str:
    problem = typed_password_problem(password)
    if problem is not None:
        raise ValueError(problem)
    return bcrypt.hashpw(_prepare(password), bcrypt.gensalt(rounds)).decode()


def _checkpw(prepared: bytes, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(prepared, hashed.encode())
    except ValueError:
        return False


def check_password_sync(password: str, hashed: str, rounds: int) -> Verdict:
    """Whether `password` opens `hashed`, and whether to re-hash it at `rounds`.

    The work does not depend on whether the password is right: a wrong long password tries
    both schemes, as the decoy does, so timing tells a wrong password from no account no more
    than it tells a right one.
    """
    if typed_password_problem(password) is not None:
        _checkpw(b"", hashed)  # the same cost as a wrong password
        return Verdict(False)
    if _checkpw(_prepare(password), hashed):
        return Verdict(True, rehash=hash_cost(hashed) != rounds)
    raw = password.encode()
    if len(raw) > MAX_PASSWORD_BYTES and _checkpw(_legacy_prepare(raw), hashed):
        return Verdict(True, rehash=True)
    return Verdict(False)


def verify_password_sync(password: str, hashed: str) -> bool:
    return check_password_sync(password, hashed, hash_cost(hashed) or 0).ok


async def hash_password(password: str, rounds: int) -> str:
    return await asyncio.to_thread(hash_password_sync, password, rounds)


async def check_password(password: str, hashed: str, rounds: int) -> Verdict:
    return await asyncio.to_thread(check_password_sync, password, hashed, rounds)


@functools.lru_cache(maxsize=4)
def decoy_hash(rounds: int) -> str:
    """A hash to verify against when an email is unknown, so that a wrong email takes as long
    as a wrong password and timing does not reveal which emails have accounts. Made at the
    configured cost, like every account's hash once it has logged in (see `Verdict.rehash`);
    the server makes it off the event loop at start-up."""
    return hash_password_sync(secrets.token_urlsafe(16), rounds)
