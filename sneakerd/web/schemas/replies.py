"""The response shapes, for the OpenAPI document only: `sneakerd.views` writes the bodies, and
the API tests check that what it writes matches these."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from sneakerd.web.schemas.fields import TIME_EXAMPLE
from sneakerd.web.schemas.queries import RESERVATION_STATUSES, STATUSES


class UserOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 7})
    username = fields.String(required=True, metadata={"example": "sole_collector"})
    email = fields.String(required=True, metadata={"example": "ana@example.com"})
    role = fields.String(
        required=True,
        validate=validate.OneOf(["customer", "admin"]),
        metadata={"example": "customer"},
    )
    created_at = fields.String(
        data_key="createdAt",
        required=True,
        metadata={"example": TIME_EXAMPLE, "format": "date-time"},
    )


class AuthOut(Schema):
    user = fields.Nested(UserOut, required=True)
    token = fields.String(required=True, metadata={"example": "eyJhbGciOiJIUzI1NiJ9..."})


class ProfileOut(Schema):
    user = fields.Nested(UserOut, required=True)


def _time_out(key: str, *, nullable: bool = False) -> fields.String:
    return fields.String(
        data_key=key,
        required=True,
        allow_none=nullable,
        metadata={
            "example": TIME_EXAMPLE,
            "format": "date-time",
            **({"x-nullable": True} if nullable else {}),
        },
    )


def _nullable(example: str) -> fields.String:
    return fields.String(
        required=True, allow_none=True, metadata={"example": example, "x-nullable": True}
    )


def _hex(description: str, key: str | None = None) -> fields.String:
    return fields.String(
        data_key=key,
        required=True,
        allow_none=True,
        metadata={"example": "9f86d081884c7d65...", "x-nullable": True, "description": description},
    )


class RaffleProofsOut(Schema):
    seed_commitment = _hex(
        "hex SHA-256 of the secret seed; shown from entriesOpenAt", "seedCommitment"
    )
    entries_digest = _hex(
        "hex SHA-256 of the entry ids, ascending, joined by \\n; at the close", "entriesDigest"
    )
    seed = _hex("The 32-byte seed, hex; null until the draw")
    entry_count = fields.Integer(data_key="entryCount", required=True, metadata={"example": 1200})
    drawn_at = _time_out("drawnAt", nullable=True)


class DropOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 1})
    name = fields.String(required=True, metadata={"example": "Air Jordan 1 'Chicago'"})
    brand = _nullable("Nike")
    description = _nullable("The 1985 colourway.")
    price = fields.String(required=True, metadata={"example": "199.99"})
    image_url = fields.String(
        data_key="imageUrl",
        required=True,
        allow_none=True,
        metadata={"example": "https://img.example.com/aj1.png", "x-nullable": True},
    )
    initial_stock = fields.Integer(
        data_key="initialStock", required=True, metadata={"example": 500}
    )
    stock = fields.Integer(required=True, metadata={"example": 420})
    reserved = fields.Integer(required=True, metadata={"example": 60})
    sold = fields.Integer(required=True, metadata={"example": 20})
    per_user_limit = fields.Integer(data_key="perUserLimit", required=True, metadata={"example": 1})
    holds_per_user = fields.Integer(data_key="holdsPerUser", required=True, metadata={"example": 3})
    paused = fields.Boolean(
        required=True,
        metadata={"example": False, "description": "Reserve and purchase answer 409 drop_paused."},
    )
    queue = fields.Boolean(required=True, metadata={"example": False})
    starts_at = _time_out("startsAt")
    ends_at = _time_out("endsAt", nullable=True)
    status = fields.String(
        required=True, validate=validate.OneOf(STATUSES), metadata={"example": "live"}
    )
    version = fields.Integer(required=True, metadata={"example": 81})
    created_at = _time_out("createdAt")
    updated_at = _time_out("updatedAt")
    mode = fields.String(
        required=True, validate=validate.OneOf(["fcfs", "raffle"]), metadata={"example": "fcfs"}
    )
    entries_open_at = _time_out("entriesOpenAt", nullable=True)
    entries_close_at = _time_out("entriesCloseAt", nullable=True)
    claim_seconds = fields.Integer(
        data_key="claimSeconds", required=True, metadata={"example": 600}
    )
    raffle = fields.Nested(
        RaffleProofsOut,
        required=True,
        allow_none=True,
        metadata={"x-nullable": True, "description": "A raffle's proofs; null for fcfs."},
    )


class DropEnvelope(Schema):
    drop = fields.Nested(DropOut, required=True)


def _next_cursor() -> fields.String:
    return fields.String(
        data_key="nextCursor",
        required=True,
        allow_none=True,
        metadata={
            "example": "ZC4xNzk1NTEwODAwMTIzLjQy",
            "x-nullable": True,
            "description": "Pass as `cursor` for the next page; null on the last page.",
        },
    )


class DropList(Schema):
    drops = fields.List(fields.Nested(DropOut), required=True)
    next_cursor = _next_cursor()


class DropStatsOut(Schema):
    drop_id = fields.Integer(data_key="dropId", required=True, metadata={"example": 1})
    initial_stock = fields.Integer(
        data_key="initialStock", required=True, metadata={"example": 500}
    )
    stock = fields.Integer(required=True, metadata={"example": 420})
    reserved = fields.Integer(required=True, metadata={"example": 60})
    sold = fields.Integer(required=True, metadata={"example": 20})
    holds_expiring_next_minute = fields.Integer(
        data_key="holdsExpiringNextMinute", required=True, metadata={"example": 12}
    )
    sold_out_at = _time_out("soldOutAt", nullable=True)


class DropStatsEnvelope(Schema):
    stats = fields.Nested(DropStatsOut, required=True)


class ReservationOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 42})
    drop_id = fields.Integer(data_key="dropId", required=True, metadata={"example": 1})
    user_id = fields.Integer(data_key="userId", required=True, metadata={"example": 7})
    status = fields.String(
        required=True,
        validate=validate.OneOf(RESERVATION_STATUSES),
        metadata={"example": "active"},
    )
    expires_at = _time_out("expiresAt")
    created_at = _time_out("createdAt")


class ReservationEnvelope(Schema):
    reservation = fields.Nested(ReservationOut, required=True)


class ReservationList(Schema):
    reservations = fields.List(fields.Nested(ReservationOut), required=True)
    next_cursor = _next_cursor()


class PurchaseOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 9})
    drop_id = fields.Integer(data_key="dropId", required=True, metadata={"example": 1})
    user_id = fields.Integer(data_key="userId", required=True, metadata={"example": 7})
    reservation_id = fields.Integer(
        data_key="reservationId", required=True, metadata={"example": 42}
    )
    price = fields.String(required=True, metadata={"example": "199.99"})
    created_at = _time_out("createdAt")


class PurchaseEnvelope(Schema):
    purchase = fields.Nested(PurchaseOut, required=True)


class PurchaseList(Schema):
    purchases = fields.List(fields.Nested(PurchaseOut), required=True)
    next_cursor = _next_cursor()


class PublicPurchaseOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 9})
    purchaser = fields.String(required=True, metadata={"example": "sole_collector"})
    created_at = _time_out("createdAt")


class PublicPurchaseList(Schema):
    purchases = fields.List(fields.Nested(PublicPurchaseOut), required=True)
    next_cursor = _next_cursor()


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"example": "out_of_stock"})
    message = fields.String(required=True, metadata={"example": "No units left right now"})
    details = fields.Dict(metadata={"example": {"dropId": ["Missing data for required field."]}})


class ErrorOut(Schema):
    error = fields.Nested(ErrorBody, required=True)


class ReadyOut(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    node = fields.String(
        required=True,
        metadata={"example": "3f9c0a5e8d2b", "description": "The id of the node that answered"},
    )


class HealthOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    node = fields.String(
        required=True,
        metadata={"example": "3f9c0a5e8d2b", "description": "The id of the node that answered"},
    )


class EntryOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 311})
    drop_id = fields.Integer(data_key="dropId", required=True, metadata={"example": 1})
    created_at = _time_out("createdAt")
    result = fields.String(
        allow_none=True,
        validate=validate.OneOf(["won", "lost"]),
        metadata={
            "x-nullable": True,
            "description": "GET .../entries/me only: null before the draw, then won or lost.",
        },
    )


class EntryEnvelope(Schema):
    entry = fields.Nested(EntryOut, required=True)


class MyEntryEnvelope(Schema):
    entry = fields.Nested(
        EntryOut,
        required=True,
        allow_none=True,
        metadata={"x-nullable": True, "description": "null if you have not entered"},
    )


class RaffleOut(Schema):
    drop_id = fields.Integer(data_key="dropId", required=True, metadata={"example": 1})
    seed_commitment = _hex("hex SHA-256 of the seed; null before entriesOpenAt", "seedCommitment")
    entries_digest = _hex(
        "hex SHA-256 of the entry ids; null before entriesCloseAt", "entriesDigest"
    )
    seed = _hex("The seed, hex; null until the draw")
    entries = fields.List(
        fields.Integer(), required=True, metadata={"description": "Entry ids, ascending"}
    )
    winners = fields.List(
        fields.Integer(),
        required=True,
        allow_none=True,
        metadata={
            "x-nullable": True,
            "description": "Entry ids offered a hold, in draw order; null until the draw",
        },
    )


class RaffleEnvelope(Schema):
    raffle = fields.Nested(RaffleOut, required=True)
