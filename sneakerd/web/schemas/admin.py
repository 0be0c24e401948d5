"""The operators' lists: their query strings and, for the OpenAPI document, their answers.

Kept apart from the shoppers' schemas so the admin surface can be read (and reviewed) in one
place; `sneakerd.views` writes the bodies these describe.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from sneakerd.domain.audit import AuditAction
from sneakerd.web.paging import ListKind
from sneakerd.web.schemas.fields import MAX_ID
from sneakerd.web.schemas.queries import PageQuery, QueryInt, _cursor
from sneakerd.web.schemas.replies import _next_cursor, _time_out


class BuyerQuery(PageQuery):
    cursor = _cursor(ListKind.BUYERS)


class AuditQuery(PageQuery):
    cursor = _cursor(ListKind.AUDIT)
    drop_id = QueryInt(
        data_key="dropId",
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"example": 1, "description": "Only this drop's entries."},
    )


class BuyerUserOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 7})
    username = fields.String(required=True, metadata={"example": "sole_collector"})
    email = fields.String(required=True, metadata={"example": "ana@example.com"})


class BuyerOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 9})
    reservation_id = fields.Integer(
        data_key="reservationId", required=True, metadata={"example": 42}
    )
    price = fields.String(required=True, metadata={"example": "199.99"})
    created_at = _time_out("createdAt")
    user = fields.Nested(BuyerUserOut, required=True)


class BuyerList(Schema):
    purchases = fields.List(fields.Nested(BuyerOut), required=True)
    next_cursor = _next_cursor()


class AuditEntryOut(Schema):
    id = fields.Integer(required=True, metadata={"example": 3})
    at = _time_out("at")
    actor = fields.String(
        required=True,
        metadata={"example": "user:1", "description": "`user:<id>` (an admin) or `cli`."},
    )
    action = fields.String(
        required=True,
        validate=validate.OneOf([a.value for a in AuditAction]),
        metadata={"example": "pause"},
    )
    drop_id = fields.Integer(
        data_key="dropId",
        required=True,
        allow_none=True,
        metadata={
            "example": 1,
            "x-nullable": True,
            "description": "The drop written; null for a webhook's or an account's entry.",
        },
    )
    before = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "x-nullable": True,
            "description": "The drop (webhook, account) before; null for a create.",
        },
    )
    after = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "x-nullable": True,
            "description": "The drop (webhook, account) after; null for a delete.",
        },
    )


class AuditList(Schema):
    entries = fields.List(fields.Nested(AuditEntryOut), required=True)
    next_cursor = _next_cursor()


BUYER_QUERY = BuyerQuery()
AUDIT_QUERY = AuditQuery()
