"""`sneakerd cluster status`: the nodes the database has heard from, and who owns each drop."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from sneakerd.cli.runtime import emit, require_schema, table, with_store
from sneakerd.clock import iso
from sneakerd.config import Settings
from sneakerd.store import Store


async def cmd_cluster_status(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> dict[str, Any]:
        await require_schema(store)
        nodes = await store.nodes()
        leases = await store.leases()
        return {
            "nodes": [{"id": n.id, "url": n.url, "seenAt": iso(n.seen_at)} for n in nodes],
            "drops": [
                {
                    "id": lease.drop_id,
                    "owner": lease.owner,
                    "epoch": lease.epoch,
                    "leaseUntil": iso(lease.until),
                }
                for lease in leases
            ],
        }

    status = await with_store(settings, work)

    def human(out: TextIO) -> None:
        print("nodes:", file=out)
        nodes = [(n["id"], n["url"], n["seenAt"]) for n in status["nodes"]]
        table(nodes, ("id", "url", "seen at"), out)
        print("drops:", file=out)
        rows = [(d["id"], d["owner"] or "-", d["epoch"], d["leaseUntil"]) for d in status["drops"]]
        table(rows, ("drop", "owner", "epoch", "lease until"), out)

    emit(args, status, human)
    return 0
