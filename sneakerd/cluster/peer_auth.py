"""The peer protocol's constants and its authentication, shared by both ends.

Authentication happens before the upgrade. The connecting node sends
`Sneakerd-Peer: <node_id>.<unix_ms>.<hex HMAC-SHA256(key, "<node_id>.<unix_ms>")>` with
`key = HMAC-SHA256(JWT_SECRET, "sneakerd-peer")` (the shared secret is never used directly, so
a peer MAC can never pass for a token signature nor the reverse); a bad MAC, or a time more than
30 s from the owner's clock, is a 403 envelope and no WebSocket.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from sneakerd.actors.mailbox import ReplyTo
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command

PEER_PATH = "/internal/peer"
PEER_HEADER = "Sneakerd-Peer"
MAX_SKEW_MS = 30_000
"""How far a peer's clock may be from ours: wide enough for real clocks, narrow enough that a
header seen on the wire is soon worthless."""
HEARTBEAT_S = 2.0
"""A link that heard nothing for this long is pinged, and closed if the pong takes half as
long again: so a peer that is frozen (SIGSTOP, a stalled VM) but keeps its sockets open is
found within 3 s, and the writes forwarded to it hear 503 then, not at the forward timeout.
Half of it (1 s) is still hundreds of times a busy owner's loop turn, so a burst does not
cut a healthy link."""
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""A frame carries a whole turn's asks (or replies): far above aiohttp's 4 MiB default, so a
burst is never split, and still a bound on what one peer can make us buffer."""

Handler = Callable[[int, Command], Awaitable[Reply]]
"""Runs a forwarded command on this node's actor for the drop (the registry's local ask)."""

Post = Callable[[int, Command, ReplyTo[Reply]], bool]
"""The owner's fast path: puts a forwarded command straight into the mailbox of the drop's
actor when one runs here, its reply to go to the given `ReplyTo`, and says True; False when
none runs here (the `Handler` then starts it, or finds the drop lives elsewhere). Raises what
posting raises (`ActorStopped` from a closed mailbox)."""


# -- authentication --------------------------------------------------------------------------


def peer_key(secret: str) -> bytes:
    """The key peers sign with, derived from the shared secret for this one purpose."""
    return hmac.new(secret.encode(), b"sneakerd-peer", hashlib.sha256).digest()


def _mac(key: bytes, node_id: str, unix_ms: int) -> str:
    return hmac.new(key, f"{node_id}.{unix_ms}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, node_id: str, unix_ms: int) -> str:
    """The `Sneakerd-Peer` header value for `node_id` at `unix_ms`."""
    return f"{node_id}.{unix_ms}.{_mac(key, node_id, unix_ms)}"


def refusal(
    key: bytes, header: str | None, now_ms: int, max_skew_ms: int = MAX_SKEW_MS
) -> str | None:
    """Why a `Sneakerd-Peer` header is refused, or None when it is good.

    The node id may itself contain dots: the time and the MAC are the last two parts."""
    if not header:
        return f"Missing {PEER_HEADER} header"
    parts = header.rsplit(".", 2)
    if len(parts) != 3 or not parts[0] or not (parts[1].isascii() and parts[1].isdigit()):
        return f"Malformed {PEER_HEADER} header"
    node_id, stamp, mac = parts
    expected = _mac(key, node_id, int(stamp))
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        return f"Bad {PEER_HEADER} signature"
    if abs(now_ms - int(stamp)) > max_skew_ms:
        return f"Stale {PEER_HEADER} header: the clocks differ by more than {max_skew_ms} ms"
    return None
