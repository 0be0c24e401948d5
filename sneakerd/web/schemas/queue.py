"""The waiting room's reply shapes, for the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields


class QueueTicketOut(Schema):
    position = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "example": 12,
            "x-nullable": True,
            "description": "1 + the users still waiting ahead; 0 once admitted; null before "
            "startsAt, when the order is not drawn yet.",
        },
    )
    joined_at = fields.String(data_key="joinedAt", required=True, metadata={"format": "date-time"})
    admitted = fields.Boolean(required=True, metadata={"example": False})
    admission_token = fields.String(
        data_key="admissionToken",
        metadata={"description": "Present while admitted: send it as Admission-Token."},
    )
    admission_expires_at = fields.String(
        data_key="admissionExpiresAt",
        required=True,
        allow_none=True,
        metadata={"format": "date-time", "x-nullable": True},
    )
    done = fields.Boolean(
        required=True, metadata={"description": "The turn is over (bought, lapsed, ended)."}
    )
    estimated_wait_seconds = fields.Integer(
        data_key="estimatedWaitSeconds",
        required=True,
        allow_none=True,
        metadata={"example": 60, "x-nullable": True},
    )


class QueueTicketEnvelope(Schema):
    ticket = fields.Nested(QueueTicketOut, required=True)
