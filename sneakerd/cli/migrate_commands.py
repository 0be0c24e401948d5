"""`sneakerd db migrate`: bring a database made by an older sneakerd up to this one's schema.

The server does the same at start-up (`sneakerd.store.schema.init_schema` runs the steps of
`sneakerd.store.migrations`); this command does it on its own, before a deploy, so that an
operator sees which version the database was at, which it is at now, and each stage as it
runs, and so that new nodes start on a database that is already current.
"""

from __future__ import annotations

import argparse
from typing import Any

from sneakerd.cli.exits import progress
from sneakerd.cli.runtime import CliError, emit, with_store
from sneakerd.config import Settings
from sneakerd.store import SCHEMA_VERSION, Store, schema
from sneakerd.store.migrations import pending
from sneakerd.store.sql import SqlStore


async def cmd_db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> dict[str, Any]:
        if not isinstance(store, SqlStore):  # pragma: no cover - every store is SQL
            raise CliError("this store has no migrations")
        before = await store.schema_version()
        if before is None:
            raise CliError("the database has no sneakerd schema to migrate: run `sneakerd db init`")
        if before > SCHEMA_VERSION:
            raise CliError(
                f"the database is at schema version {before}, newer than this sneakerd's "
                f"{SCHEMA_VERSION}: upgrade sneakerd instead"
            )
        steps = [step.version for step in pending(store.MIGRATIONS, before)]
        progress(
            f"migrate: schema version {before} -> {SCHEMA_VERSION}"
            + (f", steps {', '.join(map(str, steps))}" if steps else ": nothing to do")
        )
        await schema.init_schema(store, progress=progress)
        after = await store.schema_version()
        return {"ok": True, "from": before, "to": after, "applied": steps}

    done = await with_store(settings, work)

    def human(out: Any) -> None:
        if done["applied"]:
            print(f"migrated from schema version {done['from']} to {done['to']}", file=out)
        else:
            print(f"already at schema version {done['to']}: nothing to do", file=out)

    emit(args, done, human)
    return 0
