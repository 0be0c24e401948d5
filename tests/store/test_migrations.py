"""A database made by an earlier schema version is brought up to this one at start-up, with
its rows kept, on both stores."""

from __future__ import annotations

from pathlib import Path

from sneakerd.clock import SystemClock
from sneakerd.domain.model import Role
from sneakerd.store import SCHEMA_VERSION, open_store, schema
from sneakerd.store.sql import SqlStore
from tests.store.helpers import ms, sql

FIXTURES = Path(__file__).parent / "fixtures"


def _statements(kind: str) -> list[str]:
    return schema.parse((FIXTURES / f"schema_v1_{kind}.sql").read_text())


async def test_a_version_1_database_is_upgraded_with_its_rows(store_url: str) -> None:
    kind = "sqlite" if store_url.startswith("sqlite") else "mysql"
    store = await open_store(store_url)
    try:
        assert isinstance(store, SqlStore)
        for statement in _statements(kind):
            await sql(store, statement)
        now = ms(store, SystemClock().now_ms())
        await sql(
            store,
            "INSERT INTO users (username, email, password_hash, role, created_at) "
            "VALUES ('ann', 'Ann@Example.COM', 'x', 'customer', %s)",
            (now,),
        )
        await sql(
            store,
            "INSERT INTO drops (name, price, initial_stock, stock, reserved, sold, "
            "per_user_limit, starts_at, version, created_at, updated_at) "
            "VALUES ('Dunk', 100, 5, 5, 0, 0, 1, %s, 1, %s, %s)",
            (now, now, now),
        )
        for request in ("POST /api/reservations", "POST /api/purchases"):
            await sql(
                store,
                "INSERT INTO idempotency_keys (user_id, idem_key, request, status_code, body, "
                "created_at) VALUES (1, 'k1', %s, 409, '{}', %s)",
                (request, now),
            )
        # A success recorded with its act: version 1 wrote HTTP's 201 for it.
        await sql(
            store,
            "INSERT INTO idempotency_keys (user_id, idem_key, request, status_code, body, "
            "ref_id, created_at) VALUES (1, 'k2', 'POST /api/reservations', 201, '', 7, %s)",
            (now,),
        )
        assert await store.schema_version() == 1

        await store.init_schema()
        await store.init_schema()  # and again: nothing more to do

        assert await store.schema_version() == SCHEMA_VERSION
        drop = await store.get_drop(1)
        assert drop is not None and drop.info.holds_per_user == 3
        assert drop.info.paused is False
        assert (await store.audit_entries()).items == []
        kept = await store.idempotent_answer(1, "k1")
        assert kept is not None and kept.status == 409
        assert await store.idempotent_answer(1, "K1") is None
        recorded = await store.idempotent_answer(1, "k2")
        assert recorded is not None and (recorded.status, recorded.ref_id) == (None, 7)
        found = await store.user_by_email("ann@example.com")
        assert found is not None and found[0].email == "ann@example.com"
        # The email column now tells dávid@ from david@ (MySQL's unicode_ci folded accents).
        for n, email in enumerate(("d\u00e1vid@example.com", "david@example.com")):
            user = await store.create_user(f"dv{n}", email, "x", Role.CUSTOMER, 1)
            assert user.email == email
        assert await store.check(SystemClock().now_ms()) == []
    finally:
        await store.close()


OLD_AUDIT_CHECK = "('create', 'update', 'pause', 'unpause', 'delete', 'restock')"


async def test_a_version_6_audit_log_keeps_its_entries_and_takes_the_new_actions(
    store_url: str,
) -> None:
    """Version 7 widens the audit log's action check (entries about webhooks and accounts);
    a version-6 table, its check as it was, is brought over with its rows."""
    store = await open_store(store_url)
    try:
        assert isinstance(store, SqlStore)
        await store.init_schema()
        now = ms(store, SystemClock().now_ms())
        if store_url.startswith("sqlite"):
            await sql(store, "DROP TABLE audit_log")
            await sql(
                store,
                "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, "
                f"actor TEXT NOT NULL, action TEXT NOT NULL CHECK (action IN {OLD_AUDIT_CHECK}), "
                "drop_id INTEGER NOT NULL, before_json TEXT NULL, after_json TEXT NULL)",
            )
        else:
            await sql(store, "ALTER TABLE audit_log DROP CONSTRAINT chk_audit_action")
            await sql(
                store,
                "ALTER TABLE audit_log ADD CONSTRAINT chk_audit_action "
                f"CHECK (action IN {OLD_AUDIT_CHECK})",
            )
        await sql(store, "DELETE FROM schema_version WHERE version > 6")
        await sql(store, "INSERT INTO schema_version (version) VALUES (6)")
        await sql(
            store,
            "INSERT INTO audit_log (at, actor, action, drop_id, before_json, after_json) "
            "VALUES (%s, 'cli', 'pause', 5, '{}', '{}')",
            (now,),
        )
        assert await store.schema_version() == 6

        await store.init_schema()

        assert await store.schema_version() == SCHEMA_VERSION
        await store.webhooks.add("https://a.example/h", "s", (), 1, actor="cli")
        entries = [r.entry for r in (await store.audit_entries()).items]
        assert [(e.action.value, e.drop_id) for e in entries] == [  # newest first
            ("pause", 5),
            ("add_webhook", None),
        ]
        assert await store.check(SystemClock().now_ms()) == []
    finally:
        await store.close()
