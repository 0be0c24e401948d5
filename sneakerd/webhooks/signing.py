"""The `Sneakerd-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

The key is the webhook's secret string as printed by `webhooks add` (its UTF-8 bytes). The
timestamp is signed with the body so that a receiver can refuse an old delivery replayed by
someone who captured it (docs/webhooks.md has the receiver's side).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Sneakerd-Signature"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret: 32 random bytes, URL-safe, with a prefix that says what it is."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, value: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """True when `value` (the header) signs `body` with `secret` within `tolerance` seconds
    of `now` (unix seconds). What a receiver written in Python would do."""
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))
