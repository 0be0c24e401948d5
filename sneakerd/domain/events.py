"""What a committed batch tells the world, in the order it happened.

Each event carries `seq`: the drop's version right after that event. A batch that produces k
events moves the version from v to v + k, so seqs rise strictly and densely within a drop and
the last one equals the committed version (what a `snapshot` shows). Events exist only for
batches that committed: the actor publishes them after the COMMIT returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sneakerd.domain.model import Drop


@dataclass(frozen=True, slots=True)
class StockChanged:
    drop_id: int
    seq: int
    stock: int
    reserved: int
    sold: int


@dataclass(frozen=True, slots=True)
class Expired:
    drop_id: int
    seq: int
    reservation_id: int


@dataclass(frozen=True, slots=True)
class Purchased:
    drop_id: int
    seq: int
    purchase_id: int
    purchaser: str


@dataclass(frozen=True, slots=True)
class DropUpdated:
    drop_id: int
    seq: int
    drop: Drop


@dataclass(frozen=True, slots=True)
class DropDeleted:
    drop_id: int
    seq: int


DropEvent = StockChanged | Expired | Purchased | DropUpdated | DropDeleted
