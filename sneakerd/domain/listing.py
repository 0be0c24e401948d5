"""What a drop's listing may say: its name, brand, description, image, stock, limits and times.

These are the bounds the REST schemas and the operator CLI both call, so the two refuse the same
drops for the same reasons. Each check answers the messages a 422 lists (an empty list when the
value is fine); the edges only parse and report them. The price's rule is `money.parse_price`;
the sale window's is `rules.window_refusal`, which the actor applies to every change as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sneakerd.clock import parse_iso

NAME_MAX_LENGTH = 200
BRAND_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 5000
IMAGE_URL_MAX_LENGTH = 2048
IMAGE_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
"""For the document (an ECMA pattern: `$` ends the text); `image_url_problems` checks it whole."""
INSTANT_EXAMPLE = "2026-11-24T10:00:00.000Z"
INSTANT_MAX_TEXT = 40
"""No ISO 8601 time is longer; a longer text is refused before it is parsed."""
INSTANT_END_MS = 253_402_300_800_000
"""The first millisecond of the year 10000: times run from 1970 to the end of 9999."""

_IMAGE_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")
_NOT_A_TIME = f"Not a valid ISO 8601 time, e.g. {INSTANT_EXAMPLE}."


@dataclass(frozen=True, slots=True)
class Bounds:
    """The smallest and the largest value a count may take, both allowed."""

    low: int
    high: int

    def problems(self, value: int) -> list[str]:
        if self.low <= value <= self.high:
            return []
        low, high = self.low, self.high
        return [f"Must be greater than or equal to {low} and less than or equal to {high}."]


STOCK = Bounds(0, 10_000_000)
"""Units a drop starts with (`initialStock`)."""
PER_USER_LIMIT = Bounds(1, 1000)
"""Units one user may hold or have bought at a time."""
HOLDS_PER_USER = Bounds(1, 1_000_000)
"""Holds one user may make on a drop in its lifetime (expired and cancelled ones count)."""


class InvalidInstant(ValueError):
    """The text is not a time a drop can have; `str(exc)` says why, for a 422 or a CLI error."""


def text_problems(value: str, max_length: int) -> list[str]:
    """A name, brand or description: 1 to `max_length` characters."""
    if 1 <= len(value) <= max_length:
        return []
    return [f"Length must be between 1 and {max_length}."]


def image_url_problems(value: str) -> list[str]:
    """An http:// or https:// URL of at most `IMAGE_URL_MAX_LENGTH` characters, no spaces."""
    problems = []
    if len(value) > IMAGE_URL_MAX_LENGTH:
        problems.append(f"Longer than maximum length {IMAGE_URL_MAX_LENGTH}.")
    if _IMAGE_URL.fullmatch(value) is None:
        problems.append("Must be an http:// or https:// URL.")
    return problems


def parse_instant(value: object) -> int:
    """The epoch milliseconds of an ISO 8601 time (UTC without an offset), years 1970-9999."""
    if not isinstance(value, str) or len(value) > INSTANT_MAX_TEXT:
        raise InvalidInstant(_NOT_A_TIME)
    try:
        ms = parse_iso(value)
    except (ValueError, OverflowError):
        raise InvalidInstant(_NOT_A_TIME) from None
    if not 0 <= ms < INSTANT_END_MS:
        raise InvalidInstant(_NOT_A_TIME)
    return ms
