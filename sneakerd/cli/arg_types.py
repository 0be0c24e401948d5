"""The types of the command line's numbers: each refused, as the API and the settings refuse
it, before any command runs (a usage error, exit 2), never passed on to fail deeper down."""

from __future__ import annotations

import argparse

from sneakerd.config import MAX_WORKERS
from sneakerd.domain.raffle import MAX_CLAIM_SECONDS
from sneakerd.store import MAX_PAGE
from sneakerd.web.schemas.fields import MAX_ID


def workers_count(raw: str) -> int:
    """`--workers N`, refused as WORKERS is: a whole number from 1 to MAX_WORKERS."""
    return _whole(raw, 1, MAX_WORKERS)


def _whole(raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
    return value


def record_id(raw: str) -> int:
    """A drop's, webhook's or delivery's id: as the API takes ids, 1 to 2**53 - 1 (a huge one
    reached the SQLite driver, which could not bind it, and failed with a traceback)."""
    return _whole(raw, 1, MAX_ID)


def port_number(raw: str) -> int:
    """`serve --port`, refused as PORT is (99999 was passed on and wrapped round to 34463)."""
    return _whole(raw, 0, 65_535)


def claim_seconds(raw: str) -> int:
    """`--claim-seconds`, refused as the API refuses claimSeconds, raffle or not."""
    return _whole(raw, 1, MAX_CLAIM_SECONDS)


def page_limit(raw: str) -> int:
    """`--limit` of a list, as the API's `limit`: 1 to MAX_PAGE."""
    return _whole(raw, 1, MAX_PAGE)
