"""The request bodies the original's front-end sends, loaded by sneakerd's own field rules.

Register, login, reserve and purchase take the native schemas (their keys are the
original's: `username`, `email`, `password`, `dropId`, `reservationId`); the profile and the
drop take snake_case keys here, built from the same fields (`sneakerd.web.schemas.fields`),
so a value is refused for the same reason on both APIs. Unknown keys are ignored rather than
refused: the original's forms send fields it never read (a password confirmation, a drop's
read-only fields echoed back). An empty string in an optional text field means "none", as
the original's forms send it.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, validates_schema

from sneakerd.domain import listing
from sneakerd.domain.rules import window_refusal
from sneakerd.web.schemas import (
    LoginRequest,
    Money,
    PurchaseRequest,
    RegisterRequest,
    ReserveRequest,
)
from sneakerd.web.schemas.fields import (
    Instant,
    count,
    image_url,
    new_password,
    offered_password,
    text,
    username_field,
)

OPTIONAL_TEXT = ("brand", "description", "image_url")


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ProfileUpdate(Lenient):
    """`username` and/or `password`; a new password needs `current_password`."""

    username = username_field()
    password = new_password()
    current_password = offered_password()

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "username" not in data and "password" not in data:
            raise ValidationError("Give a username and/or a password to change.", "_schema")
        if "password" in data and "current_password" not in data:
            raise ValidationError("Required to change the password.", "current_password")


class DropBody(Lenient):
    """A drop's fields as the original named them, plus sneakerd's own (snake_case)."""

    name = text(listing.NAME_MAX_LENGTH)
    description = text(listing.DESCRIPTION_MAX_LENGTH, allow_none=True)
    brand = text(listing.BRAND_MAX_LENGTH, allow_none=True)
    price = Money()
    stock = count(listing.STOCK, example=100)
    initial_stock = count(listing.STOCK, example=100)
    image_url = image_url(allow_none=True)
    drop_start_time = Instant()
    drop_end_time = Instant(allow_none=True)
    per_user_limit = count(listing.PER_USER_LIMIT, example=1)
    holds_per_user = count(listing.HOLDS_PER_USER, example=3)

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        starts = data.get("drop_start_time")
        refused = None if starts is None else window_refusal(starts, data.get("drop_end_time"))
        if refused is not None:
            raise ValidationError("drop_end_time must be after drop_start_time", "drop_end_time")


class NewDropBody(DropBody):
    name = text(listing.NAME_MAX_LENGTH, required=True)
    price = Money(required=True)

    @validates_schema
    def _units(self, data: dict[str, Any], **kwargs: Any) -> None:
        stock, initial = data.get("stock"), data.get("initial_stock")
        if stock is None and initial is None:
            raise ValidationError("Give the drop's stock.", "stock")
        if stock is not None and initial is not None and stock != initial:
            raise ValidationError(
                "A new drop's stock and initial_stock must be the same.", "initial_stock"
            )


def cleaned(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the empty optional text fields as None."""
    return {k: None if k in OPTIONAL_TEXT and v == "" else v for k, v in body.items()}


REGISTER = RegisterRequest(unknown=EXCLUDE)
LOGIN = LoginRequest(unknown=EXCLUDE)
RESERVE = ReserveRequest(unknown=EXCLUDE)
PURCHASE = PurchaseRequest(unknown=EXCLUDE)
PROFILE = ProfileUpdate()
NEW_DROP = NewDropBody()
DROP_CHANGE = DropBody()
