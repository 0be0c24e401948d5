"""A fast path for verifying the HS256 tokens this server itself issues.

PyJWT 2.15's `decode` spends most of a call in `HMACAlgorithm.prepare_key`, which JSON-parses
the secret on every call (a guard against algorithm confusion) and raises and catches an
exception doing so. At a drop's burst that was the largest single cost of a reservation after
aiohttp itself (the profile and the gain are in loadtest/README.md).

This path never refuses anything. It *accepts* only a token that is byte-for-byte the shape
`jwt.encode` gives for docs/API.md's four claims: the exact header PyJWT writes for HS256, a
payload of exactly `sub` (a string), `role` (a string), `iat` and `exp` (integers) with
`iat <= now < exp`, and a signature equal to the canonical base64url HMAC-SHA256 of the
signing input under our secret. Every other token (expired, foreign header, extra claims,
odd encoding, bad signature) returns None and goes to PyJWT, which decides it. So the set of
tokens accepted is a subset of PyJWT's; `tests/unit/test_hs256.py` checks that differentially.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from sneakerd.clock import Clock

# What `jwt.encode(..., algorithm="HS256")` writes: {"alg":"HS256","typ":"JWT"}.
CANONICAL_HEADER = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
CLAIMS = frozenset(("sub", "role", "iat", "exp"))


class FastHS256:
    def __init__(self, secret: str, clock: Clock) -> None:
        self._key = secret.encode()
        self._clock = clock

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims if the token is one of ours and valid now; None means "ask PyJWT"."""
        if not token.isascii():
            return None
        raw = token.encode()
        header, dot, rest = raw.partition(b".")
        if header != CANONICAL_HEADER or not dot:
            return None
        payload, dot, signature = rest.partition(b".")
        if not dot or not payload:
            return None
        mac = hmac.digest(self._key, raw[: len(header) + 1 + len(payload)], hashlib.sha256)
        if not hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"="), signature):
            return None
        try:
            decoded = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        except ValueError:
            return None
        # Canonical encoding only (this also rules out characters outside the alphabet, which
        # the decoder would skip and PyJWT refuses).
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != payload:
            return None
        try:
            claims = orjson.loads(decoded)
        except orjson.JSONDecodeError:
            return None
        if type(claims) is not dict or claims.keys() != CLAIMS:
            return None
        sub, role, iat, exp = claims["sub"], claims["role"], claims["iat"], claims["exp"]
        if type(sub) is not str or type(role) is not str:
            return None
        if type(iat) is not int or type(exp) is not int:
            return None
        now_ms = self._clock.now_ms()
        if not iat * 1000 <= now_ms < exp * 1000:
            return None
        return claims
