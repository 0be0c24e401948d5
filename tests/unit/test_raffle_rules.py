"""The raffle's pure parts: the draw's functions against a reference written with hmac and
hashlib, the entry window's rules, and the checks `sneakerd raffle verify` runs, on records
that hold and on records tampered with in each way that matters."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sneakerd.domain.model import DropInfo, DropMode
from sneakerd.domain.raffle import draw_key, draw_order, entries_digest, seed_commitment
from sneakerd.domain.raffle_book import raffle_window_refusal
from sneakerd.domain.raffle_check import check_record

seeds = st.binary(min_size=32, max_size=32)
id_sets = st.sets(st.integers(min_value=1, max_value=2**53 - 1), max_size=60)


@given(seeds, id_sets)
def test_the_draw_order_is_the_hex_hmac_order(seed: bytes, ids: set[int]) -> None:
    def reference(i: int) -> str:
        return hmac.new(seed, str(i).encode(), hashlib.sha256).hexdigest()

    assert draw_order(seed, ids) == sorted(ids, key=reference)
    assert all(draw_key(seed, i) == reference(i) for i in ids)


def test_the_digest_takes_the_ids_in_numeric_order_joined_by_newlines() -> None:
    assert entries_digest([10, 2, 1]) == hashlib.sha256(b"1\n2\n10").hexdigest()
    assert entries_digest([]) == hashlib.sha256(b"").hexdigest()
    assert seed_commitment(b"\x00" * 32) == hashlib.sha256(b"\x00" * 32).hexdigest()


def _info(**fields: object) -> DropInfo:
    base: dict[str, object] = {
        "name": "x",
        "price": Decimal(1),
        "mode": DropMode.RAFFLE,
        "entries_open_at": 100,
        "entries_close_at": 200,
    }
    return DropInfo(**(base | fields))  # type: ignore[arg-type]


def test_a_raffle_window_opens_before_it_closes_and_closes_by_the_end() -> None:
    assert raffle_window_refusal(_info()) is None
    assert raffle_window_refusal(_info(mode=DropMode.FCFS, entries_open_at=None)) is None
    for fields, field in (
        ({"entries_open_at": None}, "entriesOpenAt"),
        ({"entries_close_at": None}, "entriesCloseAt"),
        ({"entries_close_at": 100}, "entriesCloseAt"),
        ({"ends_at": 150}, "entriesCloseAt"),
        ({"claim_seconds": 0}, "claimSeconds"),
    ):
        refused = raffle_window_refusal(_info(**fields))
        assert refused is not None and refused.field == field, fields
    assert raffle_window_refusal(_info(ends_at=200)) is None, "closing at the end is fine"


def _record(seed: bytes, entries: list[int], stock: int) -> dict[str, object]:
    return {
        "seedCommitment": seed_commitment(seed),
        "entriesDigest": entries_digest(entries),
        "seed": seed.hex(),
        "entries": sorted(entries),
        "winners": draw_order(seed, entries)[:stock],
    }


def _failed(record: dict[str, object], stock: int = 2) -> set[str]:
    return {c.name for c in check_record(record, stock) if not c.ok}


def test_verify_passes_a_true_record_and_names_each_kind_of_tampering() -> None:
    seed, entries = bytes(range(32)), [3, 5, 8, 13, 21]
    good = _record(seed, entries, 2)
    assert _failed(good) == set()
    winners = list(good["winners"])  # type: ignore[call-overload]
    swapped = [winners[0], next(e for e in entries if e not in winners)]
    assert _failed({**good, "winners": swapped}) == {"winners follow the draw order"}
    assert _failed({**good, "winners": winners[:1]}) == {"winners"}, "too few winners"
    other = bytes(32)
    assert "seed matches commitment" in _failed({**good, "seed": other.hex()})
    assert _failed({**good, "entries": sorted([*entries, 34])}) >= {"digest matches entries"}
    assert _failed({**good, "entries": [5, 3, 8, 13, 21]}) >= {"entries ascending"}
    pending = {**good, "seed": None, "winners": None}
    assert _failed(pending) == set() and len(check_record(pending, 2)) == 3
    longer = {**good, "winners": draw_order(seed, entries)[:3]}
    assert _failed(longer) == set(), "a win passed down adds the next entry in order"
