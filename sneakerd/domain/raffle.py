"""The verifiable draw of a raffle drop: its public proofs, its entries, and its rules.

A raffle drop sells by lot instead of first come, first served. Its draw must be checkable by
anyone from what the drop publishes, so every step is a fixed function of public values:

- a secret 32-byte seed is made when the drop becomes a raffle; from `entriesOpenAt` the drop
  shows its `seedCommitment` (hex SHA-256 of the seed), so the seed cannot change afterwards;
- at `entriesCloseAt` the `entriesDigest` (hex SHA-256 of the entry ids, ascending, as decimal
  strings joined by "\\n") is committed: no entry can be added after it;
- then the draw: the entries sorted by hex HMAC-SHA256(key = seed, message = the entry id as a
  decimal string), ascending; the first `initialStock` win a hold of `claimSeconds`, and the
  seed is published. An unclaimed win passes to the next entry in that order.

The functions here are the whole algorithm (`sneakerd raffle verify` and the tests use them,
and docs/fair-drops.md repeats them in a dozen lines). Nothing here does I/O; the seed itself is
made at the edges (`secrets`), never here, so deciding stays deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

SEED_BYTES = 32
_BLOCK = 64
"""SHA-256's block size: HMAC pads its key to it."""
DEFAULT_CLAIM_SECONDS = 600
MAX_CLAIM_SECONDS = 7 * 86_400


class DropMode(StrEnum):
    FCFS = "fcfs"
    RAFFLE = "raffle"


def seed_commitment(seed: bytes) -> str:
    """hex SHA-256 of the seed: what the drop shows before the draw."""
    return hashlib.sha256(seed).hexdigest()


def entries_digest(entry_ids: Iterable[int]) -> str:
    """hex SHA-256 of the entry ids, ascending, as decimal strings joined by "\\n"."""
    text = "\n".join(str(i) for i in sorted(entry_ids))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def draw_key(seed: bytes, entry_id: int) -> str:
    """An entry's place in the draw: hex HMAC-SHA256(key = seed, message = str(entry id))."""
    return hmac.new(seed, str(entry_id).encode("ascii"), hashlib.sha256).hexdigest()


def draw_order(seed: bytes, entry_ids: Iterable[int]) -> list[int]:
    """Every entry id in draw order: by `draw_key` ascending (the id breaks a tie, which
    SHA-256 makes practically impossible).

    The same HMAC as `draw_key` (RFC 2104; a 32-byte key fits one SHA-256 block, so it is only
    padded), with its two keyed states made once and copied per entry, and sorted by the raw
    digest, which orders exactly as its hex does. On 100,000 entries it costs 0.39 s of CPU
    here against 0.47-0.49 s for one `hmac.new(...).hexdigest()` per entry; it is the bulk of
    the draw."""
    if len(seed) > _BLOCK:
        seed = hashlib.sha256(seed).digest()
    padded = seed.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def key(entry_id: int) -> tuple[bytes, int]:
        h = inner.copy()
        h.update(str(entry_id).encode("ascii"))
        o = outer.copy()
        o.update(h.digest())
        return o.digest(), entry_id

    return sorted(entry_ids, key=key)


@dataclass(frozen=True, slots=True)
class Raffle:
    """A raffle drop's draw as stored with the drop row (one version-checked write moves it).

    `seed` is secret until `drawn_at`: views show its commitment only, and the seed itself only
    once the draw committed. `winners` counts the entries offered a hold so far, in draw order
    (the first `initialStock`, then one more for each win that passed down)."""

    seed: bytes
    digest: str | None = None
    drawn_at: int | None = None
    winners: int = 0
    entries: int = 0

    @property
    def commitment(self) -> str:
        return seed_commitment(self.seed)

    @property
    def drawn(self) -> bool:
        return self.drawn_at is not None


@dataclass(frozen=True, slots=True)
class EntryRecord:
    id: int
    drop_id: int
    user_id: int
    created_at: int


@dataclass(slots=True)
class RaffleEntries:
    """A raffle drop's entries, as its actor keeps them: two int-to-int dicts, which the
    garbage collector does not track, however many entries there are (docs/DESIGN.md)."""

    by_user: dict[int, int] = field(default_factory=dict)
    """user id -> entry id"""
    users: dict[int, int] = field(default_factory=dict)
    """entry id -> user id"""
    _order: array[int] | None = None
    _order_seed: bytes = b""

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, int]]) -> RaffleEntries:
        """From (entry id, user id) pairs."""
        entries = cls()
        entries.add(pairs)
        return entries

    def add(self, pairs: Iterable[tuple[int, int]]) -> None:
        for entry_id, user_id in pairs:
            self.by_user[user_id] = entry_id
            self.users[entry_id] = user_id

    def order(self, seed: bytes) -> Sequence[int]:
        """The draw order, computed once per seed: entries cannot change once it is asked for
        (the digest is committed before the draw), so the memo is never stale."""
        if self._order is None or self._order_seed != seed:
            self._order = array("q", draw_order(seed, self.users))
            self._order_seed = seed
        return self._order

    def copy(self) -> RaffleEntries:
        return RaffleEntries(dict(self.by_user), dict(self.users), self._order, self._order_seed)
