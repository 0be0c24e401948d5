"""Registering webhooks, and their JSON as the admin API and the CLI's `--json` show it.

One place for what a valid registration is (an absolute http or https URL with a host, known
event types) so that `sneakerd webhooks add` and `POST /api/admin/webhooks` refuse the same
things with the same words.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from sneakerd.clock import iso
from sneakerd.domain.webhook_events import EVENT_TYPES
from sneakerd.store.webhook_rows import Delivery, Webhook, WebhookRows
from sneakerd.webhooks.signing import new_secret

MAX_URL = 2048


class BadWebhook(ValueError):
    """A registration refused: `field` names what is wrong (`url` or `events`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; else `BadWebhook`."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise BadWebhook("url", f"Give an http or https URL of at most {MAX_URL} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadWebhook("url", "The URL may not hold spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in range
        URL(url)  # what the sender parses it with (a backslash in the host, say)
    except ValueError:
        raise BadWebhook("url", "Not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise BadWebhook("url", "The URL must start with http:// or https://.")
    host = parts.hostname
    if not host:
        raise BadWebhook("url", "The URL must name a host.")
    if port == 0:
        raise BadWebhook("url", "Port 0 cannot be connected to.")
    if parts.username is not None or parts.password is not None:
        raise BadWebhook(
            "url",
            "The URL may not hold a user name or password: it is shown in lists and the audit "
            "log. Each delivery is signed (Sneakerd-Signature) for the receiver to check.",
        )
    if ":" not in host and host.replace(".", "").isdigit() and not _dotted_quad(host):
        # 127.1, 2130706433, 017.0.0.1: forms the sender refuses, so every delivery would fail.
        raise BadWebhook("url", "Write an IPv4 address as four decimal numbers (127.0.0.1).")
    return url


def _dotted_quad(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)  # four decimal octets, no leading zeros
    except ValueError:
        return False
    return True


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    """The event filter, each type once, in the order given; empty means every event."""
    names = tuple(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in names if e not in EVENT_TYPES]
    if unknown:
        raise BadWebhook(
            "events",
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}.",
        )
    return names


async def register(
    rows: WebhookRows, url: str, events: Sequence[str], now: int, actor: str | None = None
) -> tuple[Webhook, str]:
    """Store a new webhook with a fresh secret (and its audit entry, by `actor`); the secret is
    returned once, here."""
    secret = new_secret()
    webhook = await rows.add(check_url(url), secret, check_events(events), now, actor=actor)
    return webhook, secret


def webhook_view(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events) or list(EVENT_TYPES),
        "allEvents": not webhook.events,
        "enabled": webhook.enabled,
        "createdAt": iso(webhook.created_at),
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "webhookId": delivery.webhook_id,
        "dropId": delivery.drop_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "lastStatus": delivery.last_status,
        "lastError": delivery.last_error,
        "deliveredAt": None if delivery.delivered_at is None else iso(delivery.delivered_at),
        "createdAt": iso(delivery.created_at),
    }
