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
