"""Checking a published draw: everything `sneakerd raffle verify` recomputes from the public
record of a raffle (GET /api/drops/{id}/raffle), and nothing else.

Each check is named and says what it found, so that a mismatch names its cause: a seed that
is not the one committed to, entries that are not the ones digested, or winners that are not
the draw order's first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sneakerd.domain.raffle import draw_order, entries_digest, seed_commitment

HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_record(record: dict[str, Any], initial_stock: int) -> list[Check]:
    """The checks a record supports so far: before the close there is only the commitment to
    look at, before the draw the digest too, after it the seed and the winners."""
    checks: list[Check] = []
    entries = record.get("entries")
    commitment, digest, seed = (record.get(k) for k in ("seedCommitment", "entriesDigest", "seed"))
    winners = record.get("winners")
    if not isinstance(entries, list) or not all(type(i) is int for i in entries):
        return [Check("entries", False, "the record's entries are not a list of ids")]
    ascending = all(a < b for a, b in itertools.pairwise(entries))
    checks.append(Check("entries ascending", ascending, f"{len(entries)} entries"))
    if commitment is not None:
        checks.append(Check("commitment", bool(HEX64.fullmatch(str(commitment))), commitment))
    if digest is not None:
        found = entries_digest(entries)
        checks.append(Check("digest matches entries", found == digest, found))
    if seed is None:
        return checks
    if not (isinstance(seed, str) and HEX64.fullmatch(seed)):
        return [*checks, Check("seed", False, "the seed is not 32 bytes of hex")]
    key = bytes.fromhex(seed)
    found = seed_commitment(key)
    checks.append(Check("seed matches commitment", found == commitment, found))
    if digest is None:
        checks.append(Check("digest published", False, "drawn without an entries digest"))
    checks.append(_winners(key, entries, winners, initial_stock))
    return checks


def _winners(key: bytes, entries: Sequence[int], winners: Any, initial_stock: int) -> Check:
    if not isinstance(winners, list):
        return Check("winners", False, "drawn, but no winners published")
    order = draw_order(key, entries)
    least = min(initial_stock, len(entries))
    if len(winners) < least:
        return Check("winners", False, f"{len(winners)} winners, at least {least} expected")
    same = winners == order[: len(winners)]
    detail = f"the first {len(winners)} of the HMAC order" if same else f"expected {order[:least]}"
    return Check("winners follow the draw order", same, detail)
