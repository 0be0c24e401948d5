"""The SQL both adapters share; each adapter supplies connections and value conversions.

Queries are written once with `%s` placeholders (the adapters translate them) and with the same
table and column names on both databases, so the contract the tests check is one piece of code.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sneakerd import errors
from sneakerd.domain.accounts import email_identity_or_none, normalize_email
from sneakerd.domain.book import Changes
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
from sneakerd.store.base import (
    DEFAULT_PAGE,
    SCHEMA_VERSION,
    DropPurchase,
    DropStats,
    Page,
    PageKey,
    StoredAnswer,
)
from sneakerd.store.migrations import Step, pending

log = logging.getLogger(__name__)

Row = Sequence[Any]
T = TypeVar("T")

# Status updates and multi-row inserts are split so that one statement stays a few hundred rows.
CHUNK = 500

DROP_COLUMNS = (
    "id, name, brand, description, price, image_url, initial_stock, stock, reserved, sold, "
    "per_user_limit, starts_at, ends_at, version, created_at, updated_at, deleted_at, "
    "holds_per_user"
)
RESERVATION_COLUMNS = "id, drop_id, user_id, status, expires_at, created_at"
PURCHASE_COLUMNS = "id, drop_id, user_id, reservation_id, price, created_at"
USER_COLUMNS = "id, username, email, role, created_at"


class DuplicateKey(Exception):
    """A unique column refused a row; adapters raise it instead of their driver's error."""

    def __init__(self, column: str) -> None:
        super().__init__(f"duplicate {column}")
        self.column = column


Statement = tuple[str, Sequence[Any]]

# What `Drop.status` decides, as SQL over one drop row; every `%s` is the same `now`. The
# sale window first, then the stock, in the same order as `Drop.status`, so that a filtered
# list holds exactly the drops whose view shows that status (tests/store/test_paging.py).
_OPEN = "(ends_at IS NULL OR ends_at > %s)"
STATUS_SQL: dict[DropStatus, str] = {
    DropStatus.ENDED: "(ends_at IS NOT NULL AND ends_at <= %s)",
    DropStatus.UPCOMING: f"({_OPEN} AND starts_at > %s)",
    DropStatus.SOLD_OUT: f"({_OPEN} AND starts_at <= %s AND stock <= 0)",
    DropStatus.LIVE: f"({_OPEN} AND starts_at <= %s AND stock > 0)",
}

LIKE_ESCAPE = "!"


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ... ESCAPE '!'`, with LIKE's own wildcards in `text` made literal."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _multi_row_inserts(head: str, rows: list[tuple[Any, ...]]) -> list[Statement]:
    """`head VALUES (...), (...)` statements of at most CHUNK rows, parameters flattened:
    one statement per chunk on either database, with no driver-specific rewriting."""
    statements: list[Statement] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        one = "(" + ", ".join(["%s"] * len(chunk[0])) + ")"
        flat = [value for row in chunk for value in row]
        statements.append((f"{head} VALUES " + ", ".join([one] * len(chunk)), flat))
    return statements


class Tx(Protocol):
    """One open transaction on one connection."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    async def execute_script(self, script: Sequence[Statement]) -> list[int]:
        """Run the statements in order, in as few round trips as the driver allows; return
        each one's changed-row count. A failing statement raises; the caller rolls back."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class SqlStore(abc.ABC):
    """Implements `Store` on top of `_read` and `_transaction`, which the adapters provide."""

    # -- what an adapter supplies ------------------------------------------------------------

    LAST_ID: str
    """The SQL expression for the id the last INSERT on this connection generated."""

    @abc.abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read outside any transaction (it sees only committed data)."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that commits when the block ends and rolls back if it raises."""

    @abc.abstractmethod
    def _time(self, ms: int) -> Any:
        """Epoch milliseconds to the database's time value."""

    @abc.abstractmethod
    def _ms(self, value: Any) -> int:
        """The database's time value back to epoch milliseconds."""

    @abc.abstractmethod
    def _price(self, price: Decimal) -> Any: ...

    @abc.abstractmethod
    def _schema_statements(self) -> Iterable[str]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- conversions -------------------------------------------------------------------------

    def _opt_time(self, ms: int | None) -> Any:
        return None if ms is None else self._time(ms)

    def _opt_ms(self, value: Any) -> int | None:
        return None if value is None else self._ms(value)

    def _drop(self, row: Row) -> Drop:
        info = DropInfo(
            name=row[1],
            brand=row[2],
            description=row[3],
            price=Decimal(row[4]).quantize(Decimal("0.01")),
            image_url=row[5],
            per_user_limit=int(row[10]),
            holds_per_user=int(row[17]),
            starts_at=self._ms(row[11]),
            ends_at=self._opt_ms(row[12]),
        )
        return Drop(
            id=int(row[0]),
            info=info,
            initial_stock=int(row[6]),
            stock=int(row[7]),
            reserved=int(row[8]),
            sold=int(row[9]),
            version=int(row[13]),
            created_at=self._ms(row[14]),
            updated_at=self._ms(row[15]),
            deleted=row[16] is not None,
        )

    def _reservation(self, row: Row) -> ReservationRecord:
        return ReservationRecord(
            int(row[0]),
            int(row[1]),
            int(row[2]),
            ReservationStatus(row[3]),
            self._ms(row[4]),
            self._ms(row[5]),
        )

    def _purchase(self, row: Row) -> PurchaseRecord:
        return PurchaseRecord(
            int(row[0]),
            int(row[1]),
            int(row[2]),
            int(row[3]),
            Decimal(row[4]).quantize(Decimal("0.01")),
            self._ms(row[5]),
        )

    def _user(self, row: Row) -> User:
        return User(int(row[0]), row[1], row[2], Role(row[3]), self._ms(row[4]))

    # -- schema ------------------------------------------------------------------------------

    MIGRATIONS: tuple[Step, ...] = ()
    """This dialect's upgrades of older databases (see `migrations`)."""

    async def init_schema(self) -> None:
        """Create the schema, or bring a database of an older version up to this one."""
        version = await self.schema_version()
        steps = pending(self.MIGRATIONS, version) if version is not None else []
        for step in steps:
            async with self._transaction() as tx:
                for statement in step.before:
                    await tx.execute(statement)
        async with self._transaction() as tx:
            for statement in self._schema_statements():
                # While upgrading, the version is recorded only once every step has run.
                if not (steps and "INTO schema_version" in statement):
                    await tx.execute(statement)
        for step in steps:
            if step.emails:
                await self._rewrite_emails()
            async with self._transaction() as tx:
                for statement in step.after:
                    await tx.execute(statement)
                await tx.execute("DELETE FROM schema_version WHERE version = %s", (step.version,))
                await tx.execute(
                    "INSERT INTO schema_version (version) VALUES (%s)", (step.version,)
                )

    async def _rewrite_emails(self) -> None:
        """Store each email as its account identity. An email whose identity another account
        already has, or that can name no account, is left as it was and reported: which of
        the two is the real owner is the operator's call."""
        rows = await self._read("SELECT id, email FROM users ORDER BY id")
        taken = {email for _, email in rows}
        for user_id, email in rows:
            identity = email_identity_or_none(email)
            if identity == email:
                continue
            if identity is None or identity in taken:
                log.warning(
                    "user %s: email %r kept as it was (its identity is taken)", user_id, email
                )
                continue
            async with self._transaction() as tx:
                await tx.execute("UPDATE users SET email = %s WHERE id = %s", (identity, user_id))
            taken.add(identity)

    async def schema_version(self) -> int | None:
        try:
            rows = await self._read("SELECT MAX(version) FROM schema_version")
        except errors.Unavailable:
            return None
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def ping(self) -> None:
        await self._read("SELECT 1")

    # -- users -------------------------------------------------------------------------------

    # Every email is turned into its identity here as well as at the edges: whatever a caller
    # passes, the column holds identities only and is compared byte for byte.

    async def create_user(
        self, username: str, email: str, password_hash: str, role: Role, now: int
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
        ids = list(dict.fromkeys(user_ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows = await self._read(
                f"SELECT id, username FROM users WHERE id IN ({marks})", tuple(chunk)
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

    async def set_role(self, email: str, role: Role) -> User | None:
        identity = email_identity_or_none(email)
        if identity is None:
            return None
        email = identity
        async with self._transaction() as tx:
            await tx.execute("UPDATE users SET role = %s WHERE email = %s", (role.value, email))
            rows = await tx.fetchall(f"SELECT {USER_COLUMNS} FROM users WHERE email = %s", (email,))
        return self._user(rows[0]) if rows else None

    # -- drops -------------------------------------------------------------------------------

    async def create_drop(self, info: DropInfo, initial_stock: int, now: int) -> Drop:
        t = self._time(now)
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO drops (name, brand, description, price, image_url, initial_stock, "
                "stock, reserved, sold, per_user_limit, holds_per_user, starts_at, ends_at, "
                "version, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 0, %s, %s, %s, %s, 1, %s, %s)",
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
                    self._time(info.starts_at),
                    self._opt_time(info.ends_at),
                    t,
                    t,
                ),
            )
            rows = await tx.fetchall(f"SELECT {DROP_COLUMNS} FROM drops WHERE id = {self.LAST_ID}")
        return self._drop(rows[0])

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
        return await self._page(
            f"SELECT {DROP_COLUMNS} FROM drops WHERE {' AND '.join(where)}",
            params,
            ("created_at", "id"),
            limit,
            after,
            self._drop,
            lambda d: PageKey(d.created_at, d.id),
        )

    async def _all_drops(self) -> list[Drop]:
        """Every drop, for the operator's report (`stats`), in the order of their start."""
        rows = await self._read(
            f"SELECT {DROP_COLUMNS} FROM drops WHERE deleted_at IS NULL ORDER BY starts_at, id"
        )
        return [self._drop(r) for r in rows]

    def _contains(self, columns: Sequence[str], text: str) -> Statement:
        """SQL true when any of `columns` contains `text`, ignoring case. This default relies
        on a case-insensitive collation (MySQL's utf8mb4_unicode_ci); adapters without one
        override it."""
        pattern = like_pattern(text)
        sql = " OR ".join(f"{c} LIKE %s ESCAPE '{LIKE_ESCAPE}'" for c in columns)
        return f"({sql})", [pattern] * len(columns)

    async def _page(
        self,
        select: str,
        params: Sequence[Any],
        order: tuple[str, str],
        limit: int,
        after: PageKey | None,
        convert: Callable[[Row], T],
        key: Callable[[T], PageKey],
    ) -> Page[T]:
        """One newest-first page of `select` (which ends in its WHERE clause), ordered by
        `order` = (time column, id column): the rows strictly after `after`, and one more to
        tell whether another page follows."""
        created, ident = order
        args = list(params)
        if after is not None:
            t = self._time(after.created_at)
            select += f" AND ({created} < %s OR ({created} = %s AND {ident} < %s))"
            args += [t, t, after.id]
        rows = await self._read(
            f"{select} ORDER BY {created} DESC, {ident} DESC LIMIT %s", (*args, limit + 1)
        )
        items = [convert(r) for r in rows[:limit]]
        return Page(items, key(items[-1]) if len(rows) > limit else None)

    async def drops_to_recover(self, now: int) -> list[int]:
        rows = await self._read(
            "SELECT id FROM drops WHERE deleted_at IS NULL "
            "AND (ends_at IS NULL OR ends_at > %s OR reserved > 0) ORDER BY id",
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
        holds = {int(r[0]): Hold(int(r[1]), self._ms(r[2]), self._ms(r[3])) for r in hold_rows}
        counts: dict[int, int] = {int(r[0]): int(r[1]) for r in bought}
        for hold in holds.values():
            counts[hold.user_id] = counts.get(hold.user_id, 0) + 1
        return DropState(drop, holds, counts, _counts(made))

    async def commit(self, changes: Changes) -> None:
        """Write one batch: the version-checked drop UPDATE and every row the batch made.

        All of it goes to the database as one script with its COMMIT (one round trip on
        MySQL): each round trip is a wait on a loop that is busy with HTTP. If another writer
        moved the version, the rows written after the UPDATE are rolled back with it.
        """
        drop, info = changes.drop, changes.drop.info
        t = self._time(drop.updated_at)
        script: list[Statement] = [
            (
                "UPDATE drops SET name = %s, brand = %s, description = %s, price = %s, "
                "image_url = %s, initial_stock = %s, stock = %s, reserved = %s, sold = %s, "
                "per_user_limit = %s, holds_per_user = %s, starts_at = %s, ends_at = %s, "
                "version = %s, "
                "updated_at = %s, deleted_at = %s WHERE id = %s AND version = %s",
                (
                    info.name,
                    info.brand,
                    info.description,
                    self._price(info.price),
                    info.image_url,
                    drop.initial_stock,
                    drop.stock,
                    drop.reserved,
                    drop.sold,
                    info.per_user_limit,
                    info.holds_per_user,
                    self._time(info.starts_at),
                    self._opt_time(info.ends_at),
                    drop.version,
                    t,
                    t if drop.deleted else None,
                    drop.id,
                    changes.expected_version,
                ),
            )
        ]
        script += _multi_row_inserts(
            f"INSERT INTO reservations ({RESERVATION_COLUMNS})",
            [
                (
                    r.id,
                    r.drop_id,
                    r.user_id,
                    r.status.value,
                    self._time(r.expires_at),
                    self._time(r.created_at),
                )
                for r in changes.new_reservations
            ],
        )
        by_status: dict[ReservationStatus, list[int]] = {}
        for reservation_id, status in changes.status_changes:
            by_status.setdefault(status, []).append(reservation_id)
        for status, ids in by_status.items():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                script.append(
                    (
                        f"UPDATE reservations SET status = %s, ended_at = %s "
                        f"WHERE status = 'active' AND id IN ({marks})",
                        (status.value, t, *chunk),
                    )
                )
        script += _multi_row_inserts(
            f"INSERT INTO purchases ({PURCHASE_COLUMNS})",
            [
                (
                    p.id,
                    p.drop_id,
                    p.user_id,
                    p.reservation_id,
                    self._price(p.price),
                    self._time(p.created_at),
                )
                for p in changes.new_purchases
            ],
        )
        script += _multi_row_inserts(
            "INSERT INTO idempotency_keys "
            "(user_id, idem_key, request, fingerprint, status_code, body, ref_id, created_at)",
            [
                (
                    k.user_id,
                    k.key.key,
                    k.key.scope,
                    k.key.fingerprint,
                    None,
                    "",
                    k.ref_id,
                    self._time(k.at),
                )
                for k in changes.keyed
            ],
        )
        try:
            await self._commit_script(
                script, f"drop {drop.id} is no longer at version {changes.expected_version}"
            )
        except DuplicateKey as exc:
            raise errors.RowConflict(f"a row of drop {drop.id}'s batch: {exc}") from exc

    async def _commit_script(self, script: list[Statement], stale: str) -> None:
        """Run a batch's script, whose first statement is the version-checked UPDATE, and
        commit it; raise `VersionConflict(stale)`, having written nothing, if that UPDATE
        matched no row. Adapters that can do this in fewer round trips override it."""
        async with self._transaction() as tx:
            counts = await tx.execute_script(script)
            if counts[0] != 1:
                raise errors.VersionConflict(stale)

    async def allocate_ids(self, kind: str, count: int) -> int:
        if kind not in ("reservations", "purchases") or count < 1:
            raise ValueError(f"cannot allocate {count} {kind!r} ids")
        async with self._transaction() as tx:
            await tx.execute(
                "UPDATE id_blocks SET next_id = next_id + %s WHERE name = %s", (count, kind)
            )
            rows = await tx.fetchall("SELECT next_id FROM id_blocks WHERE name = %s", (kind,))
        return int(rows[0][0]) - count

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
        return await self._page(
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
        return await self._page(
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
        return await self._page(
            "SELECT p.id, u.username, p.created_at FROM purchases p "
            "JOIN users u ON u.id = p.user_id WHERE p.drop_id = %s",
            (drop_id,),
            ("p.created_at", "p.id"),
            limit,
            after,
            lambda r: DropPurchase(int(r[0]), r[1], self._ms(r[2])),
            lambda p: PageKey(p.created_at, p.id),
        )

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

    # -- idempotency keys --------------------------------------------------------------------

    async def idempotent_answer(self, user_id: int, key: str) -> StoredAnswer | None:
        rows = await self._read(
            "SELECT request, status_code, body, ref_id, fingerprint, created_at "
            "FROM idempotency_keys WHERE user_id = %s AND idem_key = %s",
            (user_id, key),
        )
        if not rows:
            return None
        request_line, status, body, ref_id, fingerprint, created_at = rows[0]
        return StoredAnswer(
            request_line,
            None if status is None else int(status),
            body,
            None if ref_id is None else int(ref_id),
            fingerprint,
            self._ms(created_at),
        )

    async def save_idempotent_answer(
        self, user_id: int, key: str, answer: StoredAnswer, now: int
    ) -> StoredAnswer:
        try:
            async with self._transaction() as tx:
                await tx.execute(
                    "INSERT INTO idempotency_keys (user_id, idem_key, request, fingerprint, "
                    "status_code, body, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        user_id,
                        key,
                        answer.request,
                        answer.fingerprint,
                        answer.status,
                        answer.body,
                        self._time(now),
                    ),
                )
        except DuplicateKey:
            kept = await self.idempotent_answer(user_id, key)
            if kept is not None:
                return kept
            raise errors.Unavailable("idempotency key vanished") from None
        return answer

    async def forget_idempotent_answer(self, user_id: int, key: str, before: int) -> None:
        async with self._transaction() as tx:
            await tx.execute(
                "DELETE FROM idempotency_keys WHERE user_id = %s AND idem_key = %s "
                "AND created_at < %s",
                (user_id, key, self._time(before)),
            )

    async def forget_idempotent_answers(self, before: int) -> int:
        async with self._transaction() as tx:
            return await tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < %s", (self._time(before),)
            )

    # -- operations --------------------------------------------------------------------------

    async def check(self, now: int, grace_ms: int = 5_000) -> list[str]:
        breaches: list[str] = []
        version = await self.schema_version()
        if version != SCHEMA_VERSION:
            breaches.append(f"schema version is {version}, expected {SCHEMA_VERSION}")
            return breaches
        drops = await self._read(f"SELECT {DROP_COLUMNS} FROM drops ORDER BY id")
        active = _counts(
            await self._read(
                "SELECT drop_id, COUNT(*) FROM reservations WHERE status = 'active' "
                "GROUP BY drop_id"
            )
        )
        bought = _counts(
            await self._read("SELECT drop_id, COUNT(*) FROM purchases GROUP BY drop_id")
        )
        for row in drops:
            drop = self._drop(row)
            name = f"drop {drop.id} ({drop.info.name})"
            if min(drop.stock, drop.reserved, drop.sold, drop.initial_stock) < 0:
                breaches.append(f"{name}: a negative unit count")
            if drop.stock + drop.reserved + drop.sold != drop.initial_stock:
                breaches.append(
                    f"{name}: stock {drop.stock} + reserved {drop.reserved} + sold {drop.sold} "
                    f"!= initialStock {drop.initial_stock}"
                )
            holds = active.get(drop.id, 0)
            if drop.reserved != holds:
                breaches.append(f"{name}: reserved is {drop.reserved} but {holds} holds are active")
            sales = bought.get(drop.id, 0)
            if drop.sold != sales:
                breaches.append(f"{name}: sold is {drop.sold} but it has {sales} purchases")
        overdue = await self._read(
            "SELECT id, drop_id, expires_at FROM reservations "
            "WHERE status = 'active' AND expires_at < %s ORDER BY expires_at LIMIT 20",
            (self._time(now - grace_ms),),
        )
        for rid, drop_id, expires_at in overdue:
            late = (now - self._ms(expires_at)) / 1000
            breaches.append(
                f"reservation {rid} (drop {drop_id}) is still active {late:.1f} s "
                "after its deadline"
            )
        orphans = await self._read(
            "SELECT p.id, p.reservation_id, r.status FROM purchases p "
            "LEFT JOIN reservations r ON r.id = p.reservation_id "
            "WHERE r.id IS NULL OR r.status <> 'completed' OR r.drop_id <> p.drop_id "
            "OR r.user_id <> p.user_id ORDER BY p.id LIMIT 20"
        )
        for pid, rid, status in orphans:
            breaches.append(
                f"purchase {pid}: its reservation {rid} is {status or 'missing'}, not completed"
            )
        unpaid = await self._read(
            "SELECT r.id FROM reservations r LEFT JOIN purchases p ON p.reservation_id = r.id "
            "WHERE r.status = 'completed' AND p.id IS NULL ORDER BY r.id LIMIT 20"
        )
        for (rid,) in unpaid:
            breaches.append(f"reservation {rid} is completed but has no purchase")
        return breaches

    async def stats(self, now: int) -> list[DropStats]:
        drops = await self._all_drops()
        soon = _counts(
            await self._read(
                "SELECT drop_id, COUNT(*) FROM reservations WHERE status = 'active' "
                "AND expires_at <= %s GROUP BY drop_id",
                (self._time(now + 60_000),),
            )
        )
        return [DropStats(d, soon.get(d.id, 0)) for d in drops]


def _counts(rows: list[Row]) -> dict[int, int]:
    """`SELECT key, COUNT(*) ... GROUP BY key` rows as a dict."""
    return {int(key): int(count) for key, count in rows}
