"""`SqlStore`: the `Store` both adapters share, on top of what each supplies (`Adapter`).

Queries are written once with `%s` placeholders (the adapters translate them) and with the same
table and column names on both databases, so the contract the tests check is one piece of code.
The users', drops', reservations' and purchases' queries are here; the rest lives in a module
of its own, named for what it is: `schema` (tables and upgrades), `batch` (a batch's commit),
`id_blocks` (id allocation), `idempotency_rows` (idempotency keys), `keyset` (paging),
`filters` (the drop list's filters), `check` (the operator's check and report), `rows` (row
and value mapping).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sneakerd import errors
from sneakerd.domain.accounts import email_identity_or_none, normalize_email
from sneakerd.domain.audit import AuditAction, AuditEntry, AuditRecord, user_snapshot
from sneakerd.domain.holds import HoldTable
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    DropStatus,
    Hold,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
    User,
)
from sneakerd.domain.outcome import Changes
from sneakerd.domain.queue import WaitingRoom
from sneakerd.domain.raffle import EntryRecord
from sneakerd.store import (
    audit_rows,
    batch,
    buyer_rows,
    id_blocks,
    idempotency_rows,
    numbered,
    queue_rows,
    raffle_rows,
    schema,
)
from sneakerd.store import leases as lease_rows
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import (
    DEFAULT_PAGE,
    Buyer,
    DropPurchase,
    DropStats,
    Page,
    PageKey,
    StoredAnswer,
)
from sneakerd.store.check import breaches, drop_stats
from sneakerd.store.filters import STATUS_SQL
from sneakerd.store.keyset import page
from sneakerd.store.numbered import BuyerPurchase, Numbered
from sneakerd.store.rows import (
    CHUNK,
    DROP_COLUMNS,
    PURCHASE_COLUMNS,
    RESERVATION_COLUMNS,
    USER_COLUMNS,
    counts,
    marks,
)
from sneakerd.store.tx import DuplicateKey
from sneakerd.store.webhook_rows import WebhookRows


class SqlStore(Adapter):
    """Implements `Store` on top of `Adapter`, which `MySQLStore` and `SQLiteStore` fill in."""

    # -- schema ------------------------------------------------------------------------------

    async def init_schema(self) -> None:
        await schema.init_schema(self)

    async def schema_version(self) -> int | None:
        return await schema.schema_version(self)

    async def ping(self) -> None:
        await self._read("SELECT 1")

    @functools.cached_property
    def webhooks(self) -> WebhookRows:
        return WebhookRows(self)

    # -- users -------------------------------------------------------------------------------

    # Every email is turned into its identity here as well as at the edges: whatever a caller
    # passes, the column holds identities only and is compared byte for byte.

    async def create_user(
        self,
        username: str,
        email: str,
        password_hash: str,
        role: Role,
        now: int,
        actor: str | None = None,
    ) -> User:
        email = normalize_email(email)
        try:
            async with self._transaction() as tx:
                await tx.execute(
                    "INSERT INTO users (username, email, password_hash, role, created_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (username, email, password_hash, role.value, self._time(now)),
                )
                rows = await tx.fetchall(
                    f"SELECT {USER_COLUMNS} FROM users WHERE email = %s", (email,)
                )
                if actor is not None:
                    after = user_snapshot(self._user(rows[0]))
                    entry = AuditEntry(now, actor, AuditAction.CREATE_USER, None, None, after)
                    await tx.execute(*audit_rows.insert(self, entry))
        except DuplicateKey as exc:
            if exc.column == "email":
                raise errors.EmailTaken("That email is already registered") from None
            raise errors.UsernameTaken("That username is taken") from None
        return self._user(rows[0])

    async def user_by_id(self, user_id: int) -> User | None:
        rows = await self._read(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return self._user(rows[0]) if rows else None

    async def usernames_by_ids(self, user_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        wanted = list(dict.fromkeys(user_ids))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = await self._read(
                f"SELECT id, username FROM users WHERE id IN ({marks(len(chunk))})", tuple(chunk)
            )
            for user_id, username in rows:
                found[int(user_id)] = username
        return found

    async def update_user(
        self, user_id: int, *, username: str | None = None, password_hash: str | None = None
    ) -> User | None:
        given = {"username": username, "password_hash": password_hash}
        sets = [(column, value) for column, value in given.items() if value is not None]
        try:
            async with self._transaction() as tx:
                if sets:
                    await tx.execute(
                        "UPDATE users SET "
                        + ", ".join(f"{column} = %s" for column, _ in sets)
                        + " WHERE id = %s",
                        (*[value for _, value in sets], user_id),
                    )
                rows = await tx.fetchall(
                    f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,)
                )
        except DuplicateKey:
            raise errors.UsernameTaken("That username is taken") from None
        return self._user(rows[0]) if rows else None

    async def replace_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        async with self._transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s",
                (new_hash, user_id, old_hash),
            )
        return changed == 1

    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        identity = email_identity_or_none(email)
        if identity is None:
            return None
        rows = await self._read(
            f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = %s", (identity,)
        )
        return (self._user(rows[0]), rows[0][5]) if rows else None

    async def set_role(
        self, email: str, role: Role, actor: str | None = None, now: int = 0
    ) -> User | None:
        identity = email_identity_or_none(email)
        if identity is None:
            return None
        email = identity
        query = f"SELECT {USER_COLUMNS} FROM users WHERE email = %s"
        async with self._transaction() as tx:
            before = await tx.fetchall(query, (email,))
            if before and self._user(before[0]).role is role:
                return self._user(before[0])  # nothing changes, so nothing is logged
            await tx.execute("UPDATE users SET role = %s WHERE email = %s", (role.value, email))
            rows = await tx.fetchall(query, (email,))
            if rows and before and actor is not None:
                entry = AuditEntry(
                    now,
                    actor,
                    AuditAction.SET_ROLE,
                    None,
                    user_snapshot(self._user(before[0])),
                    user_snapshot(self._user(rows[0])),
                )
                await tx.execute(*audit_rows.insert(self, entry))
        return self._user(rows[0]) if rows else None

    # -- drops -------------------------------------------------------------------------------

    async def create_drop(
        self, info: DropInfo, initial_stock: int, now: int, actor: str = ""
    ) -> Drop:
        t = self._time(now)
        # A raffle's secret seed is made here, at the edge, and stored with the drop before
        # anyone can see the drop (or its commitment).
        raffle = raffle_rows.new_raffle(info)
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO drops (name, brand, description, price, image_url, initial_stock, "
                "stock, reserved, sold, per_user_limit, holds_per_user, paused, starts_at, "
                "ends_at, version, created_at, updated_at, mode, entries_open_at, "
                "entries_close_at, claim_seconds, raffle_seed, queue) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 0, %s, %s, %s, %s, %s, 1, %s, %s, "
                "%s, %s, %s, %s, %s, %s)",
                (
                    info.name,
                    info.brand,
                    info.description,
                    self._price(info.price),
                    info.image_url,
                    initial_stock,
                    initial_stock,
                    info.per_user_limit,
                    info.holds_per_user,
                    int(info.paused),
                    self._time(info.starts_at),
                    self._opt_time(info.ends_at),
                    t,
                    t,
                    info.mode.value,
                    self._opt_time(info.entries_open_at),
                    self._opt_time(info.entries_close_at),
                    info.claim_seconds,
                    None if raffle is None else raffle.seed.hex(),
                    int(info.queue),
                ),
            )
            rows = await tx.fetchall(f"SELECT {DROP_COLUMNS} FROM drops WHERE id = {self.LAST_ID}")
            drop = self._drop(rows[0])
            if actor:  # the entry commits with the row it describes, or neither does
                await tx.execute(*audit_rows.insert(self, audit_rows.created(drop, actor)))
        return drop

    async def get_drop(self, drop_id: int) -> Drop | None:
        rows = await self._read(
            f"SELECT {DROP_COLUMNS} FROM drops WHERE id = %s AND deleted_at IS NULL", (drop_id,)
        )
        return self._drop(rows[0]) if rows else None

    async def list_drops(
        self,
        *,
        now: int,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
        q: str | None = None,
        status: DropStatus | None = None,
    ) -> Page[Drop]:
        where: list[str] = ["deleted_at IS NULL"]
        params: list[Any] = []
        if q:
            sql, values = self._contains(("name", "brand"), q)
            where.append(sql)
            params += values
        if status is not None:
            sql = STATUS_SQL[status]
            where.append(sql)
            params += [self._time(now)] * sql.count("%s")
        return await page(
            self,
            f"SELECT {DROP_COLUMNS} FROM drops WHERE {' AND '.join(where)}",
            params,
            ("created_at", "id"),
            limit,
            after,
            self._drop,
            lambda d: PageKey(d.created_at, d.id),
        )

    async def drops_to_recover(self, now: int) -> list[int]:
        rows = await self._read(
            "SELECT id FROM drops WHERE deleted_at IS NULL "
            "AND (ends_at IS NULL OR ends_at > %s OR reserved > 0 "
            "OR (mode = 'raffle' AND raffle_drawn_at IS NULL)) ORDER BY id",
            (self._time(now),),
        )
        return [int(r[0]) for r in rows]

    async def load_state(self, drop_id: int) -> DropState | None:
        async with self._transaction() as tx:
            rows = await tx.fetchall(f"SELECT {DROP_COLUMNS} FROM drops WHERE id = %s", (drop_id,))
            if not rows:
                return None
            drop = self._drop(rows[0])
            hold_rows = await tx.fetchall(
                "SELECT id, user_id, expires_at, created_at FROM reservations "
                "WHERE drop_id = %s AND status = 'active'",
                (drop_id,),
            )
            bought = await tx.fetchall(
                "SELECT user_id, COUNT(*) FROM purchases WHERE drop_id = %s GROUP BY user_id",
                (drop_id,),
            )
            made = await tx.fetchall(
                "SELECT user_id, COUNT(*) FROM reservations WHERE drop_id = %s GROUP BY user_id",
                (drop_id,),
            )
            entries = await raffle_rows.load(tx, drop)
            tickets = await queue_rows.load(self, tx, drop_id) if drop.info.queue else []
        holds = {int(r[0]): Hold(int(r[1]), self._ms(r[2]), self._ms(r[3])) for r in hold_rows}
        units = counts(bought)
        for hold in holds.values():
            units[hold.user_id] = units.get(hold.user_id, 0) + 1
        room = WaitingRoom.restore(tickets, (h.user_id for h in holds.values()))
        return DropState(drop, HoldTable(holds), units, counts(made), entries, room)

    async def commit(self, changes: Changes) -> None:
        await batch.commit(self, changes)

    async def allocate_ids(self, kind: str, count: int) -> int:
        return await id_blocks.allocate(self, kind, count)

    async def entry_ids(self, drop_id: int) -> list[int]:
        return await raffle_rows.entry_ids(self, drop_id)

    async def entry_of(self, drop_id: int, user_id: int) -> EntryRecord | None:
        return await raffle_rows.entry_of(self, drop_id, user_id)

    # -- reservations and purchases ----------------------------------------------------------

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None:
        rows = await self._read(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = %s", (reservation_id,)
        )
        return self._reservation(rows[0]) if rows else None

    async def user_reservations(
        self,
        user_id: int,
        *,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
        status: ReservationStatus | None = None,
    ) -> Page[ReservationRecord]:
        select = f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE user_id = %s"
        params: list[Any] = [user_id]
        if status is not None:
            select += " AND status = %s"
            params.append(status.value)
        return await page(
            self,
            select,
            params,
            ("created_at", "id"),
            limit,
            after,
            self._reservation,
            lambda r: PageKey(r.created_at, r.id),
        )

    async def purchase_for_reservation(self, reservation_id: int) -> PurchaseRecord | None:
        rows = await self._read(
            f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE reservation_id = %s",
            (reservation_id,),
        )
        return self._purchase(rows[0]) if rows else None

    async def get_purchase(self, purchase_id: int) -> PurchaseRecord | None:
        rows = await self._read(
            f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE id = %s", (purchase_id,)
        )
        return self._purchase(rows[0]) if rows else None

    async def user_purchases(
        self, user_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[PurchaseRecord]:
        return await page(
            self,
            f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE user_id = %s",
            (user_id,),
            ("created_at", "id"),
            limit,
            after,
            self._purchase,
            lambda p: PageKey(p.created_at, p.id),
        )

    async def drop_purchases(
        self, drop_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[DropPurchase]:
        return await page(
            self,
            "SELECT p.id, u.username, p.created_at FROM purchases p "
            "JOIN users u ON u.id = p.user_id WHERE p.drop_id = %s",
            (drop_id,),
            ("p.created_at", "p.id"),
            limit,
            after,
            lambda r: DropPurchase(int(r[0]), r[1], self._ms(r[2])),
            lambda p: PageKey(p.created_at, p.id),
        )

    async def drop_buyers(
        self, drop_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[Buyer]:
        return await buyer_rows.buyers(self, drop_id, limit=limit, after=after)

    async def audit_entries(
        self,
        *,
        drop_id: int | None = None,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
    ) -> Page[AuditRecord]:
        return await audit_rows.entries(self, drop_id=drop_id, limit=limit, after=after)

    async def expiring_holds(self, drop_id: int, by: int) -> int:
        rows = await self._read(
            "SELECT COUNT(*) FROM reservations "
            "WHERE drop_id = %s AND status = 'active' AND expires_at <= %s",
            (drop_id, self._time(by)),
        )
        return int(rows[0][0])

    async def last_purchase_at(self, drop_id: int) -> int | None:
        rows = await self._read(
            "SELECT MAX(created_at) FROM purchases WHERE drop_id = %s", (drop_id,)
        )
        return self._opt_ms(rows[0][0]) if rows else None

    # -- numbered pages and batched lookups (see `numbered`) ---------------------------------

    async def drops_numbered(
        self, *, offset: int, limit: int, q: str | None = None
    ) -> Numbered[Drop]:
        return await numbered.drops(self, offset=offset, limit=limit, q=q)

    async def user_reservations_numbered(
        self,
        user_id: int,
        *,
        offset: int,
        limit: int,
        statuses: Sequence[ReservationStatus] = (),
    ) -> Numbered[ReservationRecord]:
        return await numbered.user_reservations(
            self, user_id, offset=offset, limit=limit, statuses=statuses
        )

    async def user_purchases_numbered(
        self, user_id: int, *, offset: int, limit: int
    ) -> Numbered[PurchaseRecord]:
        return await numbered.user_purchases(self, user_id, offset=offset, limit=limit)

    async def drops_by_ids(self, drop_ids: Sequence[int]) -> dict[int, Drop]:
        return await numbered.drops_by_ids(self, drop_ids)

    async def latest_purchases(
        self, drop_ids: Sequence[int], per_drop: int
    ) -> dict[int, list[BuyerPurchase]]:
        return await numbered.latest_purchases(self, drop_ids, per_drop)

    # -- idempotency keys --------------------------------------------------------------------

    async def idempotent_answer(self, user_id: int, key: str) -> StoredAnswer | None:
        return await idempotency_rows.answer(self, user_id, key)

    async def save_idempotent_answer(
        self, user_id: int, key: str, answer: StoredAnswer, now: int
    ) -> StoredAnswer:
        return await idempotency_rows.save(self, user_id, key, answer, now)

    async def forget_idempotent_answer(self, user_id: int, key: str, before: int) -> None:
        await idempotency_rows.forget(self, user_id, key, before)

    async def forget_idempotent_answers(self, before: int) -> int:
        return await idempotency_rows.forget_all(self, before)

    # -- nodes and leases --------------------------------------------------------------------

    async def heartbeat(self, node_id: str, url: str, now: int) -> None:
        await lease_rows.heartbeat(self, node_id, url, now)

    async def nodes(self) -> list[lease_rows.Node]:
        return await lease_rows.nodes(self)

    async def leave(self, node_id: str) -> None:
        await lease_rows.leave(self, node_id)

    async def acquire_lease(self, drop_id: int, node_id: str, now: int, ttl: int) -> int | None:
        return await lease_rows.acquire(self, drop_id, node_id, now, ttl)

    async def renew_leases(
        self, node_id: str, held: dict[int, int], now: int, ttl: int
    ) -> set[int]:
        return await lease_rows.renew(self, node_id, held, now, ttl)

    async def release_lease(self, drop_id: int, node_id: str, epoch: int) -> None:
        await lease_rows.release(self, drop_id, node_id, epoch)

    async def lease_of(self, drop_id: int) -> lease_rows.Lease | None:
        return await lease_rows.lease_of(self, drop_id)

    async def leases(self) -> list[lease_rows.Lease]:
        return await lease_rows.leases(self)

    # -- operations --------------------------------------------------------------------------

    async def check(self, now: int, grace_ms: int = 5_000) -> list[str]:
        return await breaches(self, now, grace_ms)

    async def stats(self, now: int) -> list[DropStats]:
        return await drop_stats(self, now)
