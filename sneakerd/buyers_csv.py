"""A drop's buyers as CSV, for the API (`Accept: text/csv`) and `sneakerd purchases export`.

The file is meant to be opened in a spreadsheet, and a spreadsheet runs a cell that starts with
`=`, `+`, `-` or `@` (or a tab or carriage return, which some strip first) as a formula. A
username or an email is the buyer's own text, so every cell that starts with one of those is
prefixed with `'`, which spreadsheets show as text (OWASP's advice on CSV injection). Rows are
RFC 4180 (quoted where needed, CRLF line ends) with one header row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from sneakerd.clock import iso
from sneakerd.store import MAX_PAGE, Buyer, PageKey, Store
from sneakerd.views import money

HEADER = ("purchaseId", "reservationId", "price", "createdAt", "userId", "username", "email")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, defused if a spreadsheet would take it for a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def lines(rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return out.getvalue()


def header() -> str:
    return lines([HEADER])


def buyer_row(buyer: Buyer) -> tuple[object, ...]:
    p = buyer.purchase
    return (
        p.id,
        p.reservation_id,
        money(p.price),
        iso(p.created_at),
        buyer.user_id,
        buyer.username,
        buyer.email,
    )


def buyer_lines(buyers: Iterable[Buyer]) -> str:
    return lines(buyer_row(b) for b in buyers)


async def every_page(store: Store, drop_id: int) -> AsyncIterator[list[Buyer]]:
    """Every buyer of the drop, newest first, a page at a time (keyset paging, so a long list
    costs one index range per page and is never held in memory whole)."""
    after: PageKey | None = None
    while True:
        page = await store.drop_buyers(drop_id, limit=MAX_PAGE, after=after)
        if page.items:
            yield page.items
        if page.next is None:
            return
        after = page.next
