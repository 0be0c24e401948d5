"""marshmallow 3 schemas: they validate request bodies and, through aiohttp-apispec, write the
OpenAPI document, so the two can never disagree.

Keys are camelCase on the wire (`data_key`) and snake_case in Python. Unknown keys are refused
(422) so that a typo never silently does nothing; a PUT may echo a drop's read-only fields back
and they are ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from sneakerd.clock import iso, parse_iso
from sneakerd.domain.accounts import EMAIL_MAX_LENGTH, InvalidEmail, normalize_email
from sneakerd.domain.money import CENT, PRICE_PATTERN, PriceError, parse_price
from sneakerd.domain.rules import window_refusal
from sneakerd.passwords import password_problem
from sneakerd.store import DEFAULT_PAGE, MAX_PAGE, PageKey
from sneakerd.web.paging import BadCursor, ListKind, decode_cursor

MAX_ID = 2**53 - 1
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
STATUSES = ("upcoming", "live", "sold_out", "ended")
RESERVATION_STATUSES = ("active", "expired", "cancelled", "completed")
TIME_EXAMPLE = "2026-11-24T10:00:00.000Z"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
PRICE_DOC = {
    "type": "string",
    "pattern": PRICE_PATTERN,
    "example": "199.99",
    "description": "A decimal string with at most two places; a JSON number is accepted too.",
}
TIME_DOC = {
    "type": "string",
    "format": "date-time",
    "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-",
    "example": TIME_EXAMPLE,
    "description": "ISO 8601; without an offset it is UTC. Years 1970-9999.",
}


class StrictInt(fields.Integer):
    """A JSON integer: not a bool, not a float, not a string of digits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        # Parsed JSON gives exactly int for integers (bool is its subclass, hence `type`); an
        # isinstance check against numbers.Integral costs an ABC lookup on every request.
        if type(value) is not int:
            raise self.make_error("invalid")
        return value


class Money(fields.Field):
    """A price, by the one rule of `sneakerd.domain.money` (a string or a number)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_price(value)
        except PriceError as refused:
            raise ValidationError(str(refused)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else f"{Decimal(value).quantize(CENT)}"


class Instant(fields.Field):
    """An ISO 8601 time; one without an offset is taken as UTC. Loads to epoch milliseconds."""

    default_error_messages = {  # noqa: RUF012
        "invalid": "Not a valid ISO 8601 time, e.g. 2026-11-24T10:00:00.000Z.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        try:
            ms = parse_iso(value)
        except (ValueError, OverflowError):
            raise self.make_error("invalid") from None
        if not 0 <= ms < 253_402_300_800_000:  # years 1970 to 9999
            raise self.make_error("invalid")
        return ms

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso(int(value))


def text(max_len: int, *, required: bool = False, example: str = "", **kw: Any) -> fields.String:
    metadata: dict[str, Any] = {"example": example} if example else {}
    if kw.get("allow_none"):
        metadata["x-nullable"] = True
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=max_len),
        metadata=metadata,
        **kw,
    )


class EmailIdentity(fields.String):
    """An email, loaded as its account identity (`sneakerd.domain.accounts`): the form every
    lookup, uniqueness check and rate limit uses. Validators see the identity; an invisible or
    control character is a validation error."""

    MAX_RAW_LENGTH = 4 * EMAIL_MAX_LENGTH  # bounds the work of normalising

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        if len(raw) > self.MAX_RAW_LENGTH:
            raise ValidationError(f"Longer than maximum length {EMAIL_MAX_LENGTH}.")
        try:
            return normalize_email(raw)
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from None


def _typeable(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise ValidationError(problem)


def password_field(min_len: int, max_len: int, **kw: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=min_len, max=max_len), _typeable],
        load_only=True,
        metadata={"example": "correct horse battery"},
        **kw,
    )


def username_field(**kw: Any) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(min=3, max=32),
            validate.Regexp(USERNAME_PATTERN, error="Use only letters, digits, _ . and -."),
        ],
        metadata={"example": "sole_collector"},
        **kw,
    )


# -- requests -------------------------------------------------------------------------------


class RequestSchema(Schema):
    class Meta:
        unknown = RAISE


class RegisterRequest(RequestSchema):
    username = username_field(required=True)
    email = EmailIdentity(
        required=True,
        validate=[validate.Length(min=1, max=EMAIL_MAX_LENGTH), validate.Email()],
        metadata={"example": "ana@example.com", "format": "email"},
    )
    password = password_field(8, 128, required=True)


class LoginRequest(RequestSchema):
    email = EmailIdentity(
        required=True,
        validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH),
        metadata={"example": "ana@example.com"},
    )
    password = password_field(1, 1024, required=True)


class ProfileUpdateRequest(RequestSchema):
    """`username` and/or `password`; a new password needs the current one."""

    username = username_field()
    password = password_field(8, 128)
    current_password = password_field(1, 1024, data_key="currentPassword")

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "username" not in data and "password" not in data:
            raise ValidationError("Give a username and/or a password to change.", "_schema")
        if "password" in data and "current_password" not in data:
            raise ValidationError("Required to change the password.", "currentPassword")


class DropFields(RequestSchema):
    """The writable fields of a drop, shared by create and update."""

    name = text(200, example="Air Jordan 1 Retro High OG 'Chicago'")
    price = Money(metadata=PRICE_DOC)
    initial_stock = StrictInt(
        data_key="initialStock",
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"example": 500},
    )
    brand = text(100, allow_none=True, example="Nike")
    description = text(5000, allow_none=True, example="The 1985 colourway, back at last.")

    image_url = fields.String(
        data_key="imageUrl",
        allow_none=True,
        validate=[
            validate.Length(max=2048),
            validate.Regexp(URL_PATTERN, error="Must be an http:// or https:// URL."),
        ],
        metadata={"example": "https://img.example.com/aj1.png", "x-nullable": True},
    )
    per_user_limit = StrictInt(
        data_key="perUserLimit",
        validate=validate.Range(min=1, max=1000),
        metadata={"example": 1},
    )
    holds_per_user = StrictInt(
        data_key="holdsPerUser",
        validate=validate.Range(min=1, max=1_000_000),
        metadata={
            "example": 3,
            "description": "Holds one user may make on this drop in its lifetime (expired "
            "and cancelled ones count); default 3.",
        },
    )
    starts_at = Instant(
        data_key="startsAt",
        metadata={"example": TIME_EXAMPLE, "type": "string", "format": "date-time"},
    )
    ends_at = Instant(
        data_key="endsAt",
        allow_none=True,
        metadata={"example": None, "type": "string", "format": "date-time"},
    )

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        starts = data.get("starts_at")
        refused = None if starts is None else window_refusal(starts, data.get("ends_at"))
        if refused is not None:
            raise ValidationError(refused.message, refused.field or "endsAt")


class CreateDropRequest(DropFields):
    name = text(200, required=True, example="Air Jordan 1 Retro High OG 'Chicago'")
    price = Money(required=True, metadata=PRICE_DOC)
    initial_stock = StrictInt(
        data_key="initialStock",
        required=True,
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"example": 500},
    )


READ_ONLY_DROP_KEYS = frozenset(
    {"id", "stock", "reserved", "sold", "status", "version", "createdAt", "updatedAt"}
)


class UpdateDropRequest(DropFields):
    """Any writable field; read-only fields echoed back from a GET are ignored."""


class ReserveRequest(RequestSchema):
    drop_id = StrictInt(
        data_key="dropId",
        required=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"example": 1},
    )


class PurchaseRequest(RequestSchema):
    reservation_id = StrictInt(
        data_key="reservationId",
        required=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"example": 42},
    )


class QueryInt(fields.Integer):
    """An integer in a query string: decimal digits only (no sign, point or exponent)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise self.make_error("invalid")
        if len(value) > 18:
            raise self.make_error("too_large")
        return int(value)


class Cursor(fields.String):
    """The `cursor` a list answered as its `nextCursor`; loads to the store's `PageKey`."""

    def __init__(self, kind: ListKind, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> PageKey:
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
    """`limit` and `cursor`, which every list takes. Unknown query keys are ignored (caches
    and trackers add their own)."""

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


# -- responses (for the document; views.py writes the bodies) -------------------------------


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
    starts_at = _time_out("startsAt")
    ends_at = _time_out("endsAt", nullable=True)
    status = fields.String(
        required=True, validate=validate.OneOf(STATUSES), metadata={"example": "live"}
    )
    version = fields.Integer(required=True, metadata={"example": 81})
    created_at = _time_out("createdAt")
    updated_at = _time_out("updatedAt")


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


class HealthOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


# One instance per request schema, made once: building a Schema costs more than loading a
# small body with it, and an instance keeps no per-request state.
REGISTER = RegisterRequest()
LOGIN = LoginRequest()
UPDATE_PROFILE = ProfileUpdateRequest()
CREATE_DROP = CreateDropRequest()
UPDATE_DROP = UpdateDropRequest()
RESERVE = ReserveRequest()
PURCHASE = PurchaseRequest()
DROP_QUERY = DropQuery()
RESERVATION_QUERY = ReservationQuery()
PURCHASE_QUERY = PurchaseQuery()
DROP_PURCHASE_QUERY = DropPurchaseQuery()
