"""Which live node should own a drop: rendezvous (highest random weight) hashing.

Every node computes the same answer from the same list of live nodes, without talking to the
others, and when a node joins or leaves only the drops it wins or held move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from sneakerd.store.leases import Node

N = TypeVar("N", bound=Node)


def weight(node_id: str, drop_id: int) -> int:
    digest = hashlib.blake2b(f"{node_id}/{drop_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def preferred(nodes: Sequence[N], drop_id: int) -> N | None:
    """The node that should own `drop_id`; None when no node is alive."""
    if not nodes:
        return None
    return max(nodes, key=lambda node: (weight(node.id, drop_id), node.id))
