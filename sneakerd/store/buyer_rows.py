"""Who bought a drop, as its operator sees it: each purchase with its buyer's id, username and
email (the public list, `SqlStore.drop_purchases`, shows usernames only)."""

from __future__ import annotations

from sneakerd.store.adapter import Adapter
from sneakerd.store.base import DEFAULT_PAGE, Buyer, Page, PageKey
from sneakerd.store.keyset import page
from sneakerd.store.tx import Row


def _buyer(db: Adapter, row: Row) -> Buyer:
    return Buyer(db._purchase(row[:6]), int(row[6]), row[7], row[8])


async def buyers(
    db: Adapter, drop_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
) -> Page[Buyer]:
    """Newest first, by (created_at, id), one index range a page (`idx_purchases_drop`)."""
    return await page(
        db,
        "SELECT p.id, p.drop_id, p.user_id, p.reservation_id, p.price, p.created_at, "
        "u.id, u.username, u.email FROM purchases p JOIN users u ON u.id = p.user_id "
        "WHERE p.drop_id = %s",
        (drop_id,),
        ("p.created_at", "p.id"),
        limit,
        after,
        lambda row: _buyer(db, row),
        lambda b: PageKey(b.purchase.created_at, b.purchase.id),
    )
