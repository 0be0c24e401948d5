"""The `cursor` of a paged list: an opaque string that names where the next page starts.

It carries the store's keyset position (`PageKey`: the created_at and id of the last row shown)
and the list it belongs to, so a cursor handed to another list is refused (422) rather than
silently starting somewhere arbitrary. It is not signed: a forged cursor can only name another
position in a list its holder may read anyway. Clients must treat it as opaque; its layout may
change between versions.
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import StrEnum
from typing import Any

from sneakerd.store import PageKey

MAX_CURSOR = 128
MAX_TIME = 253_402_300_800_000  # 10000-01-01, in epoch milliseconds
MAX_ID = 2**53 - 1
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_LAYOUT = re.compile(r"^([a-z]+)\.([0-9]{1,15})\.([0-9]{1,16})$")


class ListKind(StrEnum):
    """Which list a cursor pages through."""

    DROPS = "d"
    RESERVATIONS = "r"
    PURCHASES = "p"
    DROP_PURCHASES = "dp"
    BUYERS = "b"
    AUDIT = "a"
    WEBHOOK_DELIVERIES = "wd"
    WEBHOOKS = "w"


class BadCursor(ValueError):
    """Not a cursor this list handed out."""


def encode_cursor(kind: ListKind, key: PageKey) -> str:
    raw = f"{kind.value}.{key.created_at}.{key.id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: ListKind, text: str) -> PageKey:
    """The position `text` names; raises `BadCursor` for anything `encode_cursor(kind, ...)`
    could not have written."""
    if not 0 < len(text) <= MAX_CURSOR or not _ALPHABET.match(text):
        raise BadCursor("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor") from None
    match = _LAYOUT.match(raw)
    if match is None:
        raise BadCursor("not a cursor")
    if match.group(1) != kind.value:
        raise BadCursor("a cursor of another list")
    created_at, ident = int(match.group(2)), int(match.group(3))
    if not (0 <= created_at < MAX_TIME and 1 <= ident <= MAX_ID):
        raise BadCursor("not a cursor")
    return PageKey(created_at, ident)


def next_cursor(kind: ListKind, key: PageKey | None) -> str | None:
    return None if key is None else encode_cursor(kind, key)


def page_body(name: str, items: list[Any], kind: ListKind, key: PageKey | None) -> dict[str, Any]:
    """A list's answer: `{<name>: [...], "nextCursor": str | null}`."""
    return {name: items, "nextCursor": next_cursor(kind, key)}
