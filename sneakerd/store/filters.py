"""The drop list's filters as SQL: a status at a given time, and a search in name and brand."""

from __future__ import annotations

from collections.abc import Sequence

from sneakerd.domain.model import DropStatus
from sneakerd.store.tx import Statement

# What `Drop.status` decides, as SQL over one drop row; every `%s` is the same `now`. The
# sale window first, then the stock, in the same order as `Drop.status`, so that a filtered
# list holds exactly the drops whose view shows that status (tests/store/test_paging.py).
_OPEN = "(ends_at IS NULL OR ends_at > %s)"
STATUS_SQL: dict[DropStatus, str] = {
    DropStatus.ENDED: "(ends_at IS NOT NULL AND ends_at <= %s)",
    DropStatus.UPCOMING: f"({_OPEN} AND starts_at > %s)",
    DropStatus.SOLD_OUT: f"({_OPEN} AND starts_at <= %s AND stock <= 0)",
    DropStatus.LIVE: f"({_OPEN} AND starts_at <= %s AND stock > 0)",
}

LIKE_ESCAPE = "!"


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ... ESCAPE '!'`, with LIKE's own wildcards in `text` made literal."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def like_any(columns: Sequence[str], text: str) -> Statement:
    """SQL true when any of `columns` contains `text` under the columns' collation: ignoring
    case only where the collation does (MySQL's utf8mb4_unicode_ci)."""
    sql = " OR ".join(f"{c} LIKE %s ESCAPE '{LIKE_ESCAPE}'" for c in columns)
    return f"({sql})", [like_pattern(text)] * len(columns)
