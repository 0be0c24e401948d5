"""The query strings of the lists: `limit` and `cursor` on every list, and each list's filters.

Unknown query keys are ignored (caches and trackers add their own), unlike unknown body keys.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from sneakerd.store import DEFAULT_PAGE, MAX_PAGE
from sneakerd.web.paging import BadCursor, ListKind, Position, decode_cursor

STATUSES = ("upcoming", "live", "sold_out", "ended")
RESERVATION_STATUSES = ("active", "expired", "cancelled", "completed")


class QueryInt(fields.Integer):
    """An integer in a query string: decimal digits only (no sign, point or exponent)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise self.make_error("invalid")
        if len(value) > 18:
            raise self.make_error("too_large")
        return int(value)


class Cursor(fields.String):
    """The `cursor` a list answered as its `nextCursor`; loads to a `Position` (the route checks
    that it is of its own list: `paging.start_after`)."""

    def __init__(self, kind: ListKind, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Position:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return decode_cursor(self.kind, value)
        except BadCursor as exc:
            raise ValidationError(
                f"Not a cursor of this list ({exc}): pass the nextCursor of its previous page."
            ) from None


def _cursor(kind: ListKind) -> Cursor:
    return Cursor(
        kind,
        metadata={
            "description": "The `nextCursor` of the previous page (opaque); omit it for the "
            "first page."
        },
    )


class PageQuery(Schema):
    """`limit` and `cursor`, which every list takes."""

    class Meta:
        unknown = EXCLUDE

    limit = QueryInt(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Items per page, 1-{MAX_PAGE} (default {DEFAULT_PAGE})."},
    )


class DropQuery(PageQuery):
    cursor = _cursor(ListKind.DROPS)
    q = fields.String(
        validate=validate.Length(max=100),
        metadata={
            "example": "jordan",
            "description": "A case-insensitive substring of the name or the brand.",
        },
    )
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"example": "live"})


class ReservationQuery(PageQuery):
    cursor = _cursor(ListKind.RESERVATIONS)
    status = fields.String(
        validate=validate.OneOf(RESERVATION_STATUSES), metadata={"example": "active"}
    )


class PurchaseQuery(PageQuery):
    cursor = _cursor(ListKind.PURCHASES)


class DropPurchaseQuery(PageQuery):
    cursor = _cursor(ListKind.DROP_PURCHASES)


# One instance per query schema, made once, as for the bodies.
DROP_QUERY = DropQuery()
RESERVATION_QUERY = ReservationQuery()
PURCHASE_QUERY = PurchaseQuery()
DROP_PURCHASE_QUERY = DropPurchaseQuery()
