"""The field types the request schemas are made of: each parses one wire value and hands it to
the rule in `sneakerd.domain` that decides it, so the API and the CLI refuse alike.

A rule's bounds are also written into the field's metadata, for the OpenAPI document only: the
domain's check is what refuses. Query-string and cursor fields live with the queries.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from sneakerd.clock import iso
from sneakerd.domain import accounts, listing
from sneakerd.domain.accounts import InvalidEmail
from sneakerd.domain.listing import Bounds, InvalidInstant
from sneakerd.domain.money import CENT, PRICE_PATTERN, PriceError, parse_price

MAX_ID = 2**53 - 1
"""The largest id a body, path or query may name: a JSON number stays exact up to it."""
TIME_EXAMPLE = listing.INSTANT_EXAMPLE
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


class Rule(validate.Validator):
    """A domain check as a marshmallow validator: `problems` lists what is wrong with a value
    ([] when nothing is), and they become the field's messages in the 422."""

    def __init__(self, problems: Callable[[Any], list[str]]) -> None:
        self.problems = problems

    def __call__(self, value: Any) -> Any:
        problems = self.problems(value)
        if problems:
            raise ValidationError(problems)
        return value


class StrictInt(fields.Integer):
    """A JSON integer: not a bool, not a float, not a string of digits."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        # Parsed JSON gives exactly int for integers (bool is its subclass, hence `type`); an
        # isinstance check against numbers.Integral costs an ABC lookup on every request.
        if type(value) is not int:
            raise self.make_error("invalid")
        return value


def count(bounds: Bounds, *, example: int, **kw: Any) -> StrictInt:
    """A JSON integer within the domain's `bounds`."""
    metadata = {"example": example, "minimum": bounds.low, "maximum": bounds.high}
    return StrictInt(
        validate=Rule(bounds.problems), metadata={**metadata, **kw.pop("metadata", {})}, **kw
    )


class Money(fields.Field):
    """A price, by the one rule of `sneakerd.domain.money` (a string or a number)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_price(value)
        except PriceError as refused:
            raise ValidationError(str(refused)) from None

    def _serialize(self, value: Any, *_: Any, **kwargs: Any) -> str | None:
        return None if value is None else f"{Decimal(value).quantize(CENT)}"


class Instant(fields.Field):
    """An ISO 8601 time by `sneakerd.domain.listing.parse_instant`; loads to epoch ms."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return listing.parse_instant(value)
        except InvalidInstant as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value: Any, *_: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso(int(value))


def text(max_len: int, *, required: bool = False, example: str = "", **kw: Any) -> fields.String:
    """A name, brand or description: 1 to `max_len` characters (`listing.text_problems`)."""
    metadata: dict[str, Any] = {"example": example} if example else {}
    if kw.get("allow_none"):
        metadata["x-nullable"] = True
    metadata.update(minLength=1, maxLength=max_len)
    return fields.String(
        required=required,
        validate=Rule(lambda value: listing.text_problems(value, max_len)),
        metadata=metadata,
        **kw,
    )


def image_url(**kw: Any) -> fields.String:
    return fields.String(
        validate=Rule(listing.image_url_problems),
        metadata={
            "example": "https://img.example.com/aj1.png",
            "x-nullable": True,
            "maxLength": listing.IMAGE_URL_MAX_LENGTH,
            "pattern": listing.IMAGE_URL_PATTERN,
        },
        **kw,
    )


class EmailIdentity(fields.String):
    """An email, loaded as its account identity (`sneakerd.domain.accounts.email_identity`): the
    form every lookup, uniqueness check and rate limit uses. Validators see the identity; an
    invisible or control character is a validation error."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return accounts.email_identity(raw)
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from None


def email_field(problems: Callable[[str], list[str]], **kw: Any) -> EmailIdentity:
    """An email checked, once it is an identity, by `problems`: the address rule for a new
    account, the length alone for a login (whose unknown address just finds nobody)."""
    metadata = {
        "example": "ana@example.com",
        "minLength": 1,
        "maxLength": accounts.EMAIL_MAX_LENGTH,
    }
    return EmailIdentity(
        validate=Rule(problems), metadata={**metadata, **kw.pop("metadata", {})}, **kw
    )


def new_password(**kw: Any) -> fields.String:
    return _password(
        accounts.new_password_problems,
        accounts.PASSWORD_MIN_LENGTH,
        accounts.PASSWORD_MAX_LENGTH,
        **kw,
    )


def offered_password(**kw: Any) -> fields.String:
    return _password(
        accounts.offered_password_problems, 1, accounts.OFFERED_PASSWORD_MAX_LENGTH, **kw
    )


def _password(
    problems: Callable[[str], list[str]], min_len: int, max_len: int, **kw: Any
) -> fields.String:
    return fields.String(
        validate=Rule(problems),
        load_only=True,
        metadata={"example": "correct horse battery", "minLength": min_len, "maxLength": max_len},
        **kw,
    )


def username_field(**kw: Any) -> fields.String:
    return fields.String(
        validate=Rule(accounts.username_problems),
        metadata={
            "example": "sole_collector",
            "minLength": accounts.USERNAME_MIN_LENGTH,
            "maxLength": accounts.USERNAME_MAX_LENGTH,
            "pattern": accounts.USERNAME_PATTERN,
        },
        **kw,
    )
