"""A raffle's values as JSON (docs/API.md, "Raffle"), beside `sneakerd.views`, which calls
`raffle_fields` for every drop.

What is secret stays so here: the seed's commitment appears from `entriesOpenAt`, the seed
itself only once the draw has committed.
"""

from __future__ import annotations

from typing import Any

from sneakerd.clock import iso
from sneakerd.domain.model import Drop
from sneakerd.domain.raffle import EntryRecord
from sneakerd.raffle_service import RaffleRecord

Json = dict[str, Any]


def _opt_iso(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


def proofs(drop: Drop, now: int) -> Json | None:
    """The draw's proofs as of `now` (None for a drop that is not a raffle)."""
    raffle, info = drop.raffle, drop.info
    if raffle is None:
        return None
    shown = info.entries_open_at is None or now >= info.entries_open_at or raffle.digest
    return {
        "seedCommitment": raffle.commitment if shown else None,
        "entriesDigest": raffle.digest,
        "seed": raffle.seed.hex() if raffle.drawn else None,
        "entryCount": raffle.entries,
        "drawnAt": _opt_iso(raffle.drawn_at),
    }


def raffle_fields(drop: Drop, now: int) -> Json:
    """The raffle's fields of a drop object (every drop has them; `raffle` is null unless
    the drop is a raffle)."""
    info = drop.info
    return {
        "mode": info.mode.value,
        "entriesOpenAt": _opt_iso(info.entries_open_at),
        "entriesCloseAt": _opt_iso(info.entries_close_at),
        "claimSeconds": info.claim_seconds,
        "raffle": proofs(drop, now),
    }


def raffle_view(record: RaffleRecord, now: int) -> Json:
    """GET /api/drops/{id}/raffle: everything needed to recompute the draw."""
    shown = proofs(record.drop, now) or {}
    return {
        "dropId": record.drop.id,
        "seedCommitment": shown.get("seedCommitment"),
        "entriesDigest": shown.get("entriesDigest"),
        "seed": shown.get("seed"),
        "entries": record.entries,
        "winners": record.winners,
    }


def entry_view(entry: EntryRecord, record: RaffleRecord | None = None) -> Json:
    """An entry; with the record, its result: null before the draw, then "won" or "lost"
    (a lost entry may still win later, if a win passes down to it)."""
    view: Json = {"id": entry.id, "dropId": entry.drop_id, "createdAt": iso(entry.created_at)}
    if record is not None:
        winners = record.winners
        view["result"] = None if winners is None else "won" if entry.id in winners else "lost"
    return view
