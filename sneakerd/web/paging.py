"""The `cursor` of a paged list: an opaque string that names where the next page starts.

It carries the store's keyset position (`PageKey`: the created_at and id of the last row shown)
and the list it belongs to: the kind of list and a tag of that one list (`list_scope`: whose,
of which drop or webhook, under which filters). A cursor handed to another list (another
user's, another drop's, the same list under another filter) is refused (422) rather than
silently starting somewhere arbitrary or answering an empty page. It is not signed: a forged
cursor can only name another position in a list its holder may read anyway. Clients must treat
it as opaque; its layout may change between versions (a cursor of an older layout is a 422).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from marshmallow import ValidationError

from sneakerd.store import PageKey

MAX_CURSOR = 128
MAX_TIME = 253_402_300_800_000  # 10000-01-01, in epoch milliseconds
MAX_ID = 2**53 - 1
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_LAYOUT = re.compile(r"^([a-z]+)\.([0-9a-f]{8})\.([0-9]{1,15})\.([0-9]{1,16})$")
_PAGING_KEYS = frozenset({"cursor", "limit"})


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


@dataclass(frozen=True, slots=True)
class Position:
    """A decoded cursor: where its list's next page starts, and the tag of that list."""

    scope: str
    key: PageKey


def list_scope(query: Mapping[str, Any], *owners: object) -> str:
    """The tag of one list: its filters (the loaded query but `limit` and `cursor`; an empty
    or absent filter is the same list) and its owners (the user of a "my" list, the drop or
    webhook of a path), 8 hex digits of a hash. The kind of list is in the cursor already."""
    filters = sorted(
        f"{name}={value}"
        for name, value in query.items()
        if name not in _PAGING_KEYS and value not in (None, "")
    )
    text = "\n".join([",".join(str(owner) for owner in owners), *filters])
    return hashlib.blake2s(text.encode("utf-8"), digest_size=4).hexdigest()


def start_after(query: Mapping[str, Any], scope: str) -> PageKey | None:
    """The position the query's `cursor` names in the list tagged `scope` (None: the first
    page); a cursor of another list is a validation error on `cursor` (422)."""
    position: Position | None = query.get("cursor")
    if position is None:
        return None
    if position.scope != scope:
        raise ValidationError(
            {
                "cursor": [
                    "Not a cursor of this list (a cursor of another user's, drop's or "
                    "filter's list): pass the nextCursor of its previous page."
                ]
            }
        )
    return position.key


def encode_cursor(kind: ListKind, key: PageKey, scope: str) -> str:
    raw = f"{kind.value}.{scope}.{key.created_at}.{key.id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: ListKind, text: str) -> Position:
    """The position `text` names; raises `BadCursor` for anything `encode_cursor(kind, ...)`
    could not have written (which list of that kind it is `start_after` checks)."""
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
    created_at, ident = int(match.group(3)), int(match.group(4))
    if not (0 <= created_at < MAX_TIME and 1 <= ident <= MAX_ID):
        raise BadCursor("not a cursor")
    return Position(match.group(2), PageKey(created_at, ident))


def next_cursor(kind: ListKind, key: PageKey | None, scope: str) -> str | None:
    return None if key is None else encode_cursor(kind, key, scope)


def page_body(
    name: str, items: list[Any], kind: ListKind, key: PageKey | None, scope: str
) -> dict[str, Any]:
    """A list's answer: `{<name>: [...], "nextCursor": str | null}`, the cursor tagged with
    the list's `scope` (`list_scope`)."""
    return {name: items, "nextCursor": next_cursor(kind, key, scope)}
