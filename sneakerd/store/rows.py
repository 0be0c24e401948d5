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
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
    User,
)
from sneakerd.store.tx import Row, Statement

DROP_COLUMNS = (
    "id, name, brand, description, price, image_url, initial_stock, stock, reserved, sold, "
    "per_user_limit, starts_at, ends_at, version, created_at, updated_at, deleted_at, "
    "holds_per_user, queue"
)
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
            queue=bool(row[18]),
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
        )

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
