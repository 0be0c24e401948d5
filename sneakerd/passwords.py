"""bcrypt hashing, always off the event loop: one hash costs tens of milliseconds by design."""

from __future__ import annotations

import asyncio
import functools
import secrets

import bcrypt

MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; longer inputs are pre-hashed below


def _prepare(password: str) -> bytes:
    raw = password.encode()
    if len(raw) > MAX_PASSWORD_BYTES:
        import base64
        import hashlib

        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prepare(password), bcrypt.gensalt(rounds)).decode()


def verify_password_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prepare(password), hashed.encode())
    except ValueError:
        return False


async def hash_password(password: str, rounds: int) -> str:
    return await asyncio.to_thread(hash_password_sync, password, rounds)


async def verify_password(password: str, hashed: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password, hashed)


@functools.lru_cache(maxsize=4)
def decoy_hash(rounds: int) -> str:
    """A hash to verify against when an email is unknown, so that a wrong email takes as long
    as a wrong password and timing does not reveal which emails have accounts."""
    return hash_password_sync(secrets.token_urlsafe(16), rounds)
