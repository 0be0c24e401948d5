"""The admin webhooks API's bodies, query and replies (for validation and the document)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from sneakerd.domain.webhook_events import EVENT_TYPES
from sneakerd.store.webhook_rows import STATES
from sneakerd.web.paging import ListKind
from sneakerd.web.schemas.bodies import RequestSchema
from sneakerd.web.schemas.queries import PageQuery, _cursor


class EventTypes(fields.Field):
    """A list of event type names, checked as a whole: an error inside a marshmallow List is
    keyed by the item's index, which the error envelope's `details` (field -> messages) does
    not hold."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError("A list of event type names.")
        unknown = [v for v in value if v not in EVENT_TYPES]
        if unknown:
            shown = ", ".join(v[:40] for v in unknown[:5])
            raise ValidationError(
                f"Unknown event type(s): {shown}. Known: {', '.join(EVENT_TYPES)}."
            )
        return list(value)


class WebhookRequest(RequestSchema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2048),
        metadata={"example": "https://shop.example/hooks/sneakerd"},
    )
    events = EventTypes(
        load_default=list,
        metadata={
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "description": "The event types to receive; omitted or empty: every type.",
        },
    )


class DeliveryQuery(PageQuery):
    cursor = _cursor(ListKind.WEBHOOK_DELIVERIES)
    state = fields.String(validate=validate.OneOf(STATES), metadata={"example": "dead"})


class WebhookOut(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    all_events = fields.Boolean(data_key="allEvents", required=True)
    enabled = fields.Boolean(required=True)
    created_at = fields.String(data_key="createdAt", required=True)


class WebhookCreated(Schema):
    webhook = fields.Nested(WebhookOut, required=True)
    secret = fields.String(
        required=True,
        metadata={"description": "The HMAC key of its signatures; shown this once only."},
    )


class WebhookQuery(PageQuery):
    cursor = _cursor(ListKind.WEBHOOKS)


class WebhookList(Schema):
    webhooks = fields.List(fields.Nested(WebhookOut), required=True)
    next_cursor = fields.String(data_key="nextCursor", required=True, allow_none=True)


class DeliveryOut(Schema):
    id = fields.Integer(required=True)
    event_id = fields.Integer(data_key="eventId", required=True)
    event_type = fields.String(data_key="eventType", required=True)
    webhook_id = fields.Integer(data_key="webhookId", required=True)
    drop_id = fields.Integer(data_key="dropId", required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.String(data_key="nextAttemptAt", required=True, allow_none=True)
    last_status = fields.Integer(data_key="lastStatus", required=True, allow_none=True)
    last_error = fields.String(data_key="lastError", required=True, allow_none=True)
    delivered_at = fields.String(data_key="deliveredAt", required=True, allow_none=True)
    created_at = fields.String(data_key="createdAt", required=True)


class DeliveryList(Schema):
    deliveries = fields.List(fields.Nested(DeliveryOut), required=True)
    next_cursor = fields.String(data_key="nextCursor", required=True, allow_none=True)
