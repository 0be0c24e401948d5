"""The request bodies: what each route that takes JSON accepts, field by field.

Keys are camelCase on the wire (`data_key`) and snake_case in Python. Unknown keys are refused
(422) so that a typo never silently does nothing; a PUT may echo a drop's read-only fields back
and they are ignored (`READ_ONLY_DROP_KEYS`, which the drop route strips first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from sneakerd.domain import accounts, listing
from sneakerd.domain.listing import Bounds
from sneakerd.domain.raffle import DEFAULT_CLAIM_SECONDS, MAX_CLAIM_SECONDS, DropMode
from sneakerd.domain.rules import window_refusal
from sneakerd.web.schemas.fields import (
    MAX_ID,
    PRICE_DOC,
    TIME_EXAMPLE,
    Instant,
    Money,
    count,
    email_field,
    image_url,
    new_password,
    offered_password,
    text,
    username_field,
)

NAME_EXAMPLE = "Air Jordan 1 Retro High OG 'Chicago'"
IDS = Bounds(1, MAX_ID)


class StrictBoolean(fields.Boolean):
    """JSON's true or false only: not 1, "yes" or "on", which marshmallow's Boolean takes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class RequestSchema(Schema):
    class Meta:
        unknown = RAISE


class RegisterRequest(RequestSchema):
    username = username_field(required=True)
    email = email_field(accounts.address_problems, required=True, metadata={"format": "email"})
    password = new_password(required=True)


class LoginRequest(RequestSchema):
    email = email_field(accounts.email_length_problems, required=True)
    password = offered_password(required=True)


class ProfileUpdateRequest(RequestSchema):
    """`username` and/or `password`; a new password needs the current one."""

    username = username_field()
    password = new_password()
    current_password = offered_password(data_key="currentPassword")

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "username" not in data and "password" not in data:
            raise ValidationError("Give a username and/or a password to change.", "_schema")
        if "password" in data and "current_password" not in data:
            raise ValidationError("Required to change the password.", "currentPassword")


class DropFields(RequestSchema):
    """The writable fields of a drop, shared by create and update."""

    name = text(listing.NAME_MAX_LENGTH, example=NAME_EXAMPLE)
    price = Money(metadata=PRICE_DOC)
    initial_stock = count(listing.STOCK, example=500, data_key="initialStock")
    brand = text(listing.BRAND_MAX_LENGTH, allow_none=True, example="Nike")
    description = text(
        listing.DESCRIPTION_MAX_LENGTH, allow_none=True, example="The 1985 colourway, back at last."
    )
    image_url = image_url(data_key="imageUrl", allow_none=True)
    per_user_limit = count(listing.PER_USER_LIMIT, example=1, data_key="perUserLimit")
    holds_per_user = count(
        listing.HOLDS_PER_USER,
        example=3,
        data_key="holdsPerUser",
        metadata={
            "description": "Holds one user may make on this drop in its lifetime (expired "
            "and cancelled ones count); default 3.",
        },
    )
    paused = StrictBoolean(
        metadata={
            "description": "A paused drop refuses reserve and purchase (409 drop_paused); "
            "holds keep their deadlines. Default false.",
        },
    )
    starts_at = Instant(
        data_key="startsAt",
        metadata={"example": TIME_EXAMPLE, "type": "string", "format": "date-time"},
    )
    queue = StrictBoolean(
        metadata={
            "description": "A waiting room: shoppers join the queue and reserve once "
            "admitted (with their Admission-Token); default false.",
        },
    )
    ends_at = Instant(
        data_key="endsAt",
        allow_none=True,
        metadata={"example": None, "type": "string", "format": "date-time"},
    )

    mode = fields.String(
        validate=validate.OneOf([m.value for m in DropMode]),
        metadata={
            "example": "fcfs",
            "description": "`fcfs` (default): first come, first served; `raffle`: sold by a "
            "verifiable draw among entries (needs entriesOpenAt and entriesCloseAt).",
        },
    )
    entries_open_at = Instant(
        data_key="entriesOpenAt",
        allow_none=True,
        metadata={"example": TIME_EXAMPLE, "type": "string", "format": "date-time"},
    )
    entries_close_at = Instant(
        data_key="entriesCloseAt",
        allow_none=True,
        metadata={
            "example": TIME_EXAMPLE,
            "type": "string",
            "format": "date-time",
            "description": "After entriesOpenAt, and no later than endsAt.",
        },
    )
    claim_seconds = count(
        Bounds(1, MAX_CLAIM_SECONDS),
        example=DEFAULT_CLAIM_SECONDS,
        data_key="claimSeconds",
        metadata={"description": "How long a raffle winner's hold lasts; default 600."},
    )

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        starts = data.get("starts_at")
        refused = None if starts is None else window_refusal(starts, data.get("ends_at"))
        if refused is not None:
            raise ValidationError(refused.message, refused.field or "endsAt")
        opens, closes = data.get("entries_open_at"), data.get("entries_close_at")
        if opens is not None and closes is not None and closes <= opens:
            raise ValidationError("entriesCloseAt must be after entriesOpenAt", "entriesCloseAt")


class CreateDropRequest(DropFields):
    name = text(listing.NAME_MAX_LENGTH, required=True, example=NAME_EXAMPLE)
    price = Money(required=True, metadata=PRICE_DOC)
    initial_stock = count(listing.STOCK, example=500, data_key="initialStock", required=True)


READ_ONLY_DROP_KEYS = frozenset(
    {"id", "stock", "reserved", "sold", "status", "version", "createdAt", "updatedAt", "raffle"}
)


class UpdateDropRequest(DropFields):
    """Any writable field; read-only fields echoed back from a GET are ignored."""


class OneIdRequest(RequestSchema):
    """A body of one required id: reserve's and purchase's, the requests of a burst.

    A plainly valid body (just the one key, a JSON integer in range) is loaded without
    marshmallow's machinery, which took ~8 % of the server's CPU per reserve under load;
    anything else goes through `Schema.load`, so every refusal, and its message, is
    marshmallow's as before (a property test compares the two on arbitrary bodies)."""

    KEY: ClassVar[str]
    ATTR: ClassVar[str]

    def load(
        self,
        data: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        *,
        many: bool | None = None,
        partial: Any = None,
        unknown: str | None = None,
    ) -> Any:
        if many is None and partial is None and type(data) is dict and len(data) == 1:
            value = data.get(self.KEY)
            if type(value) is int and not IDS.problems(value):
                return {self.ATTR: value}
        return super().load(data, many=many, partial=partial, unknown=unknown)


class ReserveRequest(OneIdRequest):
    KEY, ATTR = "dropId", "drop_id"
    drop_id = count(IDS, example=1, data_key=KEY, required=True)


class PurchaseRequest(OneIdRequest):
    KEY, ATTR = "reservationId", "reservation_id"
    reservation_id = count(IDS, example=42, data_key=KEY, required=True)


# One instance per request schema, made once: building a Schema costs more than loading a
# small body with it, and an instance keeps no per-request state.
REGISTER = RegisterRequest()
LOGIN = LoginRequest()
UPDATE_PROFILE = ProfileUpdateRequest()
CREATE_DROP = CreateDropRequest()
UPDATE_DROP = UpdateDropRequest()
RESERVE = ReserveRequest()
PURCHASE = PurchaseRequest()
