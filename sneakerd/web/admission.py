"""Admission tokens: what a user admitted by a drop's waiting room shows to reserve.

A token is `{drop}.{user}.{expires}.{mac}`: the drop and user it is bound to, when it lapses
(epoch ms, the end of the admission), and an HMAC-SHA256 over the first three under a key
derived from the server's JWT secret (so the JWT key itself never signs anything else). It is
made again from the ticket whenever the ticket is read (nothing to store), checked here
without I/O, and the drop's actor still decides whether the admission is live: a valid token of
a user whose turn is done does not reserve.
"""

from __future__ import annotations

import hashlib
import hmac

from sneakerd.domain.queue import QueueTicket

HEADER = "Admission-Token"
_PURPOSE = b"sneakerd admission token v1"


class AdmissionTokens:
    __slots__ = ("_key",)

    def __init__(self, jwt_secret: str) -> None:
        self._key = hmac.new(jwt_secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def sign(self, drop_id: int, user_id: int, expires_at: int) -> str:
        body = f"{drop_id}.{user_id}.{expires_at}"
        return f"{body}.{self._mac(body)}"

    def for_ticket(self, ticket: QueueTicket) -> str | None:
        """The token of an admitted ticket whose admission has not lapsed; None otherwise."""
        if not ticket.admitted or ticket.admission_expires_at is None:
            return None
        return self.sign(ticket.drop_id, ticket.user_id, ticket.admission_expires_at)

    def valid(self, token: str | None, drop_id: int, user_id: int, now: int) -> bool:
        """A token of this drop and user, signed here, not yet lapsed."""
        if not token or len(token) > 200:
            return False
        parts = token.split(".")
        if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
            return False
        body = ".".join(parts[:3])
        if not hmac.compare_digest(self._mac(body), parts[3]):
            return False
        return int(parts[0]) == drop_id and int(parts[1]) == user_id and now < int(parts[2])
