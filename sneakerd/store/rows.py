"""Rows to values and back: the column lists, the mapping of a row to a domain value, and the
database's own types for times and prices, which each adapter converts (`Codec`).

Every query whose rows are mapped here names its columns through the lists below, so the
mapping reads them by position and stays in step with the SELECTs.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropMode,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
    User,
)
from sneakerd.domain.raffle import EntryRecord, Raffle
from sneakerd.store.tx import Row, Statement

DROP_COLUMNS = (
    "id, name, brand, description, price, image_url, initial_stock, stock, reserved, sold, "
    "per_user_limit, starts_at, ends_at, version, created_at, updated_at, deleted_at, "
    "holds_per_user, " + "mode, entries_open_at, entries_close_at, claim_seconds, raffle_seed, "
    "entries_digest, raffle_drawn_at, raffle_winners, raffle_entries, paused, queue"
)
ENTRY_COLUMNS = "id, drop_id, user_id, created_at"
RESERVATION_COLUMNS = "id, drop_id, user_id, status, expires_at, created_at"
PURCHASE_COLUMNS = "id, drop_id, user_id, reservation_id, price, created_at"
USER_COLUMNS = "id, username, email, role, created_at"

CHUNK = 500
"""Rows per statement for multi-row inserts and `IN (...)` lists: one statement stays a few
hundred rows on either database."""

CENTS = Decimal("0.01")


def marks(count: int) -> str:
    """`%s, %s, ...`: the placeholders of an `IN (...)` list of `count` values."""
    return ", ".join(["%s"] * count)


def multi_row_inserts(head: str, rows: Sequence[tuple[Any, ...]]) -> list[Statement]:
    """`head VALUES (...), (...)` statements of at most CHUNK rows, parameters flattened:
    one statement per chunk on either database, with no driver-specific rewriting."""
    statements: list[Statement] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        one = f"({marks(len(chunk[0]))})"
        flat = [value for row in chunk for value in row]
        statements.append((f"{head} VALUES " + ", ".join([one] * len(chunk)), flat))
    return statements


def counts(rows: Sequence[Row]) -> dict[int, int]:
    """`SELECT key, COUNT(*) ... GROUP BY key` rows as a dict."""
    return {int(key): int(count) for key, count in rows}


class Codec(abc.ABC):
    """The mapping between rows and values. An adapter supplies its database's time and price
    types (`_time`, `_ms`, `_price`); everything else here is the same on both databases."""

    @abc.abstractmethod
    def _time(self, ms: int) -> Any:
        """Epoch milliseconds to the database's time value."""

    @abc.abstractmethod
    def _ms(self, value: Any) -> int:
        """The database's time value back to epoch milliseconds."""

    @abc.abstractmethod
    def _price(self, price: Decimal) -> Any:
        """A price to the database's decimal value."""

    def _opt_time(self, ms: int | None) -> Any:
        return None if ms is None else self._time(ms)

    def _opt_ms(self, value: Any) -> int | None:
        return None if value is None else self._ms(value)

    def _drop(self, row: Row) -> Drop:
        """A row of `DROP_COLUMNS`."""
        info = DropInfo(
            name=row[1],
            brand=row[2],
            description=row[3],
            price=Decimal(row[4]).quantize(CENTS),
            image_url=row[5],
            per_user_limit=int(row[10]),
            holds_per_user=int(row[17]),
            starts_at=self._ms(row[11]),
            ends_at=self._opt_ms(row[12]),
            mode=DropMode(row[18]),
            entries_open_at=self._opt_ms(row[19]),
            entries_close_at=self._opt_ms(row[20]),
            claim_seconds=int(row[21]),
            paused=bool(row[27]),
            queue=bool(row[28]),
        )
        return Drop(
            id=int(row[0]),
            info=info,
            initial_stock=int(row[6]),
            stock=int(row[7]),
            reserved=int(row[8]),
            sold=int(row[9]),
            version=int(row[13]),
            created_at=self._ms(row[14]),
            updated_at=self._ms(row[15]),
            deleted=row[16] is not None,
            raffle=self._raffle(row),
        )

    def _raffle(self, row: Row) -> Raffle | None:
        """The draw's columns of a drop row (18 on); None for a drop that never was a raffle."""
        if row[22] is None:
            return None
        return Raffle(
            seed=bytes.fromhex(row[22]),
            digest=row[23],
            drawn_at=self._opt_ms(row[24]),
            winners=int(row[25]),
            entries=int(row[26]),
        )

    def _raffle_values(self, drop: Drop) -> tuple[Any, ...]:
        """The values of the mode and draw columns (`mode` to `raffle_entries`) of a drop."""
        info, raffle = drop.info, drop.raffle
        return (
            info.mode.value,
            self._opt_time(info.entries_open_at),
            self._opt_time(info.entries_close_at),
            info.claim_seconds,
            None if raffle is None else raffle.seed.hex(),
            None if raffle is None else raffle.digest,
            None if raffle is None else self._opt_time(raffle.drawn_at),
            0 if raffle is None else raffle.winners,
            0 if raffle is None else raffle.entries,
        )

    def _entry(self, row: Row) -> EntryRecord:
        """A row of `ENTRY_COLUMNS`."""
        return EntryRecord(int(row[0]), int(row[1]), int(row[2]), self._ms(row[3]))

    def _entry_row(self, e: EntryRecord) -> tuple[Any, ...]:
        return (e.id, e.drop_id, e.user_id, self._time(e.created_at))

    def _reservation(self, row: Row) -> ReservationRecord:
        """A row of `RESERVATION_COLUMNS`."""
        return ReservationRecord(
            int(row[0]),
            int(row[1]),
            int(row[2]),
            ReservationStatus(row[3]),
            self._ms(row[4]),
            self._ms(row[5]),
        )

    def _reservation_row(self, r: ReservationRecord) -> tuple[Any, ...]:
        """The values of `RESERVATION_COLUMNS` for an INSERT."""
        return (
            r.id,
            r.drop_id,
            r.user_id,
            r.status.value,
            self._time(r.expires_at),
            self._time(r.created_at),
        )

    def _purchase(self, row: Row) -> PurchaseRecord:
        """A row of `PURCHASE_COLUMNS`."""
        return PurchaseRecord(
            int(row[0]),
            int(row[1]),
            int(row[2]),
            int(row[3]),
            Decimal(row[4]).quantize(CENTS),
            self._ms(row[5]),
        )

    def _purchase_row(self, p: PurchaseRecord) -> tuple[Any, ...]:
        """The values of `PURCHASE_COLUMNS` for an INSERT."""
        return (
            p.id,
            p.drop_id,
            p.user_id,
            p.reservation_id,
            self._price(p.price),
            self._time(p.created_at),
        )

    def _user(self, row: Row) -> User:
        """A row of `USER_COLUMNS`."""
        return User(int(row[0]), row[1], row[2], Role(row[3]), self._ms(row[4]))
