"""Which node owns which drop: heartbeats and leases, taken and renewed by conditional UPDATEs.

No consensus of our own: the database is the one place that decides. A node is alive while its
`cluster_nodes` row was seen within the lease time. A drop is owned by the node named in its
`drop_leases` row until `lease_until`; taking a lease that is free or lapsed raises its `epoch`,
and every commit of the drop's actor carries the epoch it was granted (`Changes.epoch`, checked
in the commit's UPDATE: see `batch.FENCE`). So a node that lost its lease while paused,
partitioned or slow can never write again, whatever its clock says.
"""

from __future__ import annotations

from dataclasses import dataclass

from sneakerd.store.adapter import Adapter
from sneakerd.store.tx import DuplicateKey, Row


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    url: str
    seen_at: int


@dataclass(frozen=True, slots=True)
class Lease:
    drop_id: int
    owner: str
    epoch: int
    until: int


async def heartbeat(db: Adapter, node_id: str, url: str, now: int) -> None:
    """Say this node is alive (each node writes only its own row, so no two race)."""
    async with db._transaction() as tx:
        changed = await tx.execute(
            "UPDATE cluster_nodes SET url = %s, seen_at = %s WHERE id = %s",
            (url, db._time(now), node_id),
        )
    if changed:
        return
    # No row changed: none exists yet, or (MySQL counts changed rows, not matched ones) it
    # already says exactly this.
    try:
        async with db._transaction() as tx:
            await tx.execute(
                "INSERT INTO cluster_nodes (id, url, seen_at) VALUES (%s, %s, %s)",
                (node_id, url, db._time(now)),
            )
    except DuplicateKey:
        pass


async def nodes(db: Adapter) -> list[Node]:
    rows = await db._read("SELECT id, url, seen_at FROM cluster_nodes ORDER BY id")
    return [Node(str(r[0]), str(r[1]), db._ms(r[2])) for r in rows]


async def leave(db: Adapter, node_id: str) -> None:
    """A node that stops gives up its row and its leases, so others take over at once."""
    async with db._transaction() as tx:
        await tx.execute(
            "UPDATE drop_leases SET lease_until = %s WHERE owner = %s", (db._time(0), node_id)
        )
        await tx.execute("DELETE FROM cluster_nodes WHERE id = %s", (node_id,))


async def acquire(db: Adapter, drop_id: int, node_id: str, now: int, ttl: int) -> int | None:
    """Take the drop's lease if it is free, lapsed, or this node's own from an earlier life;
    return the new epoch, or None when another node holds it. Taking always raises the epoch,
    which fences every earlier holder, this node's earlier selves included."""
    try:
        async with db._transaction() as tx:
            await tx.execute(
                "INSERT INTO drop_leases (drop_id, owner, epoch, lease_until) "
                "VALUES (%s, '', 0, %s)",
                (drop_id, db._time(0)),
            )
    except DuplicateKey:
        pass
    async with db._transaction() as tx:
        changed = await tx.execute(
            "UPDATE drop_leases SET owner = %s, epoch = epoch + 1, lease_until = %s "
            "WHERE drop_id = %s AND (lease_until < %s OR owner = %s OR owner = '')",
            (node_id, db._time(now + ttl), drop_id, db._time(now), node_id),
        )
        if not changed:
            return None
        rows = await tx.fetchall("SELECT epoch FROM drop_leases WHERE drop_id = %s", (drop_id,))
    return int(rows[0][0])


async def renew(db: Adapter, node_id: str, held: dict[int, int], now: int, ttl: int) -> set[int]:
    """Extend the leases this node holds at the epochs in `held` (drop id -> epoch); return
    the drops whose lease is still this node's at that epoch (the others are lost)."""
    if not held:
        return set()
    kept: set[int] = set()
    async with db._transaction() as tx:
        ids = sorted(held)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            await tx.execute(
                f"UPDATE drop_leases SET lease_until = %s WHERE owner = %s "
                f"AND drop_id IN ({marks})",
                (db._time(now + ttl), node_id, *chunk),
            )
            rows = await tx.fetchall(
                f"SELECT drop_id, epoch FROM drop_leases WHERE owner = %s AND drop_id IN ({marks})",
                (node_id, *chunk),
            )
            kept |= {int(d) for d, e in rows if held.get(int(d)) == int(e)}
    return kept


async def release(db: Adapter, drop_id: int, node_id: str, epoch: int) -> None:
    """Hand a drop back (its actor has stopped): the next node may take it at once."""
    async with db._transaction() as tx:
        await tx.execute(
            "UPDATE drop_leases SET lease_until = %s "
            "WHERE drop_id = %s AND owner = %s AND epoch = %s",
            (db._time(0), drop_id, node_id, epoch),
        )


async def lease_of(db: Adapter, drop_id: int) -> Lease | None:
    rows = await db._read(
        "SELECT drop_id, owner, epoch, lease_until FROM drop_leases WHERE drop_id = %s",
        (drop_id,),
    )
    return _lease(db, rows[0]) if rows else None


async def leases(db: Adapter) -> list[Lease]:
    rows = await db._read(
        "SELECT drop_id, owner, epoch, lease_until FROM drop_leases ORDER BY drop_id"
    )
    return [_lease(db, r) for r in rows]


def _lease(db: Adapter, row: Row) -> Lease:
    return Lease(int(row[0]), str(row[1]), int(row[2]), db._ms(row[3]))
