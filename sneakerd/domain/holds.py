"""A drop's live holds and per-user counts, kept where the garbage collector never looks.

A full (generation 2) collection walks every GC-tracked object, so each live hold kept as a
tracked object (a dataclass, a persistent map's node, a tuple in a list) makes every later
pause longer, and holds pile up by the hundred thousand (docs/DESIGN.md, "Live state and the
garbage collector"; the pauses measured are in loadtest/README.md). CPython never tracks a
dict whose keys and values are all ints, so a hold here is one entry of such a dict, its three
numbers packed into one int, and a user's counts are entries of two more. A collection then
costs the same at a thousand and at a million live holds.

The decision code must not change the state it decides against (a batch whose COMMIT fails is
undone by dropping its book), yet copying a million entries per batch is what made batches
slow. So a book writes into an `Overlay`: a small dict of changes read through to the table
below, turned into a `Delta` that the actor applies to the tables after the commit returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")


class Hold(NamedTuple):
    """An active reservation as the decision code reads it (made on demand, never kept)."""

    user_id: int
    expires_at: int
    created_at: int


_EXPIRES_BITS = 47  # epoch ms up to the year 6429
_HELD_BITS = 32  # a hold's length, ms: up to 49 days
_EXPIRES_MASK = (1 << _EXPIRES_BITS) - 1
_HELD_MASK = (1 << _HELD_BITS) - 1
_USER_SHIFT = _EXPIRES_BITS + _HELD_BITS


def pack(hold: Hold) -> int:
    """One int for a hold: the user id above the hold's length above its deadline."""
    held = hold.expires_at - hold.created_at
    if not (0 <= hold.expires_at <= _EXPIRES_MASK and 0 <= held <= _HELD_MASK):
        raise ValueError(f"hold out of range: {hold}")
    return (hold.user_id << _USER_SHIFT) | (held << _EXPIRES_BITS) | hold.expires_at


def unpack(packed: int) -> Hold:
    expires_at = packed & _EXPIRES_MASK
    held = (packed >> _EXPIRES_BITS) & _HELD_MASK
    return Hold(packed >> _USER_SHIFT, expires_at, expires_at - held)


class HoldTable(Mapping[int, Hold]):
    """Reservation id -> `Hold`, stored as one untracked dict of packed ints."""

    __slots__ = ("_packed",)

    def __init__(self, holds: Mapping[int, Hold] | None = None) -> None:
        self._packed: dict[int, int] = {}
        if holds:
            for reservation_id, hold in holds.items():
                self._packed[reservation_id] = pack(hold)

    def __getitem__(self, reservation_id: int) -> Hold:
        return unpack(self._packed[reservation_id])

    def __contains__(self, reservation_id: object) -> bool:
        return reservation_id in self._packed

    def __iter__(self) -> Iterator[int]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HoldTable):
            return self._packed == other._packed
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> HoldTable:
        table = HoldTable()
        table._packed = dict(self._packed)
        return table

    def apply(self, added: Mapping[int, Hold], removed: frozenset[int]) -> None:
        packed = self._packed
        for reservation_id in removed:
            packed.pop(reservation_id, None)
        for reservation_id, hold in added.items():
            packed[reservation_id] = pack(hold)


class Overlay(Generic[K, V]):
    """A working copy of a mapping that costs O(its changes): reads fall through to `base`,
    writes and deletions stay here. `base` is never changed."""

    __slots__ = ("_base", "_removed", "_set")

    def __init__(self, base: Mapping[K, V]) -> None:
        self._base = base
        self._set: dict[K, V] = {}
        self._removed: set[K] = set()

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: V) -> V: ...

    def get(self, key: K, default: V | None = None) -> V | None:
        if key in self._set:
            return self._set[key]
        if key in self._removed:
            return default
        return self._base.get(key, default)

    def __setitem__(self, key: K, value: V) -> None:
        self._set[key] = value
        self._removed.discard(key)

    def __delitem__(self, key: K) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self._set.pop(key, None)
        if key in self._base:
            self._removed.add(key)

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def items(self) -> list[tuple[K, V]]:
        """Every entry as the overlay sees it (a list: the caller may change the overlay)."""
        hidden = self._removed.union(self._set)
        return [(k, v) for k, v in self._base.items() if k not in hidden] + list(self._set.items())

    @property
    def changed(self) -> dict[K, V]:
        return self._set

    @property
    def removed(self) -> frozenset[K]:
        return frozenset(self._removed)


@dataclass(frozen=True, slots=True)
class Delta:
    """What a batch changes in a drop's live state, applied only after its commit."""

    added: Mapping[int, Hold] = field(default_factory=dict)
    removed: frozenset[int] = frozenset()
    counts: Mapping[int, int] = field(default_factory=dict)
    """user id -> new count of holds + purchases (0: the user has none left)."""
    made: Mapping[int, int] = field(default_factory=dict)
    """user id -> new count of holds ever made."""
    entries: tuple[tuple[int, int], ...] = ()
    """(entry id, user id) of each raffle entry the batch made."""


def apply_counts(table: dict[int, int], changes: Mapping[int, int]) -> None:
    """Set each user's new count; a count of 0 removes the user (the table stays small)."""
    for user_id, count in changes.items():
        if count:
            table[user_id] = count
        else:
            table.pop(user_id, None)
