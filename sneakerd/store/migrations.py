"""Forward-only upgrades of a database made by an earlier schema version.

A fresh database gets the current schema straight from `mysql.sql` / `sqlite.sql`, whose
`CREATE TABLE IF NOT EXISTS` statements cannot change a table that already exists. So each
version that changes an existing table has a step here, per dialect: statements to run before
the schema script (alter or set aside the old tables) and after it (move rows into the tables
the script created). `SqlStore.init_schema` runs the steps above the database's version, in
order, then records the new version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    version: int
    """The schema version this step brings a database to."""
    before: tuple[str, ...]
    after: tuple[str, ...]
    emails: bool = False
    """Rewrite stored emails to their account identity (`sneakerd.domain.accounts`)."""


_ACTIONS = (
    "('create', 'update', 'pause', 'unpause', 'delete', 'restock', "
    "'add_webhook', 'remove_webhook', 'create_user', 'set_role')"
)
"""Every action an audit entry may have (`domain.audit.AuditAction`), as of version 7."""
_KEY_COLUMNS = "user_id, idem_key, request, status_code, body, ref_id, created_at"
# Version 1 wrote HTTP's 201 for a success recorded with its act; version 2 keeps no status for
# it (the store knows no HTTP), so the copy leaves the status of such a row NULL.
_KEY_VALUES = (
    "user_id, idem_key, request, CASE WHEN ref_id IS NULL THEN status_code END, body, ref_id, "
    "created_at"
)

MYSQL: tuple[Step, ...] = (
    Step(
        2,
        before=(
            # holdsPerUser: lifetime holds per user per drop.
            "ALTER TABLE drops ADD COLUMN holds_per_user INT UNSIGNED NOT NULL DEFAULT 3 "
            "AFTER per_user_limit, ADD CONSTRAINT chk_drops_holds CHECK (holds_per_user >= 1), "
            "ADD KEY idx_drops_created (deleted_at, created_at)",
            # Emails compare byte for byte: unicode_ci made dávid@ and david@ one address.
            "ALTER TABLE users "
            "MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, "
            "MODIFY password_hash VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
            # Idempotency keys: byte-for-byte keys, one per user, with a request fingerprint.
            # The old table is set aside without its foreign key, whose name the new one takes.
            "ALTER TABLE idempotency_keys DROP FOREIGN KEY fk_idempotency_user",
            "RENAME TABLE idempotency_keys TO idempotency_keys_v1",
        ),
        after=(
            # The first use of each key wins (INSERT IGNORE would do it with a warning a row).
            f"INSERT INTO idempotency_keys ({_KEY_COLUMNS}) "
            f"SELECT {_KEY_VALUES} FROM idempotency_keys_v1 o WHERE NOT EXISTS ("
            "SELECT 1 FROM idempotency_keys_v1 n WHERE n.user_id = o.user_id "
            "AND n.idem_key = o.idem_key COLLATE utf8mb4_bin "
            "AND (n.created_at < o.created_at "
            "OR (n.created_at = o.created_at AND n.request < o.request)))",
            "DROP TABLE idempotency_keys_v1",
        ),
        emails=True,
    ),
    Step(
        3,
        # Raffle drops: the mode, the entry window and the draw on the drop row (the entries'
        # table is new, so the schema script creates it).
        before=(
            "ALTER TABLE drops ADD COLUMN mode VARCHAR(8) NOT NULL DEFAULT 'fcfs', "
            "ADD COLUMN entries_open_at DATETIME(3) NULL, "
            "ADD COLUMN entries_close_at DATETIME(3) NULL, "
            "ADD COLUMN claim_seconds INT UNSIGNED NOT NULL DEFAULT 600, "
            "ADD COLUMN raffle_seed CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL, "
            "ADD COLUMN entries_digest CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL, "
            "ADD COLUMN raffle_drawn_at DATETIME(3) NULL, "
            "ADD COLUMN raffle_winners INT UNSIGNED NOT NULL DEFAULT 0, "
            "ADD COLUMN raffle_entries INT UNSIGNED NOT NULL DEFAULT 0, "
            "ADD CONSTRAINT chk_drops_mode CHECK (mode IN ('fcfs', 'raffle'))",
        ),
        after=(),
    ),
    Step(
        4,
        # `paused` (operators stop a drop's sales for a while); the audit_log table is new,
        # so the schema script creates it.
        before=(
            "ALTER TABLE drops ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE "
            "AFTER holds_per_user",
        ),
        after=(),
    ),
    Step(
        5,
        # The waiting room: a drop's flag here; its tickets' table is new (the schema script).
        before=("ALTER TABLE drops ADD COLUMN queue TINYINT(1) NOT NULL DEFAULT 0",),
        after=(),
    ),
    # Webhooks: three new tables, which the schema script creates; nothing to move.
    Step(6, before=(), after=()),
    # The audit log's entries about no drop (webhooks, accounts): four more actions. After the
    # schema script, so the table is there whichever version the database came from; one
    # statement (DDL commits on its own), so a failure leaves the old check, and a rerun works.
    # (`DROP CONSTRAINT` needs MariaDB 10.2 or MySQL 8.0.19.)
    Step(
        7,
        before=(),
        after=(
            "ALTER TABLE audit_log DROP CONSTRAINT chk_audit_action, "
            f"ADD CONSTRAINT chk_audit_action CHECK (action IN {_ACTIONS})",
        ),
    ),
)

SQLITE: tuple[Step, ...] = (
    Step(
        2,
        before=(
            "ALTER TABLE drops ADD COLUMN holds_per_user INTEGER NOT NULL DEFAULT 3 "
            "CHECK (holds_per_user >= 1)",
            "ALTER TABLE idempotency_keys RENAME TO idempotency_keys_v1",
        ),
        after=(
            f"INSERT OR IGNORE INTO idempotency_keys ({_KEY_COLUMNS}) "
            f"SELECT {_KEY_VALUES} FROM idempotency_keys_v1 ORDER BY created_at",
            "DROP TABLE idempotency_keys_v1",
        ),
        # The email column keeps its NOCASE collation: identities are case-folded, so NOCASE
        # and byte-for-byte comparison agree on every stored identity.
        emails=True,
    ),
    Step(
        3,
        before=(
            "ALTER TABLE drops ADD COLUMN mode TEXT NOT NULL DEFAULT 'fcfs' "
            "CHECK (mode IN ('fcfs', 'raffle'))",
            "ALTER TABLE drops ADD COLUMN entries_open_at INTEGER NULL",
            "ALTER TABLE drops ADD COLUMN entries_close_at INTEGER NULL",
            "ALTER TABLE drops ADD COLUMN claim_seconds INTEGER NOT NULL DEFAULT 600",
            "ALTER TABLE drops ADD COLUMN raffle_seed TEXT NULL",
            "ALTER TABLE drops ADD COLUMN entries_digest TEXT NULL",
            "ALTER TABLE drops ADD COLUMN raffle_drawn_at INTEGER NULL",
            "ALTER TABLE drops ADD COLUMN raffle_winners INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE drops ADD COLUMN raffle_entries INTEGER NOT NULL DEFAULT 0",
        ),
        after=(),
    ),
    Step(
        4,
        before=(
            "ALTER TABLE drops ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 "
            "CHECK (paused IN (0, 1))",
        ),
        after=(),
    ),
    Step(
        5,
        before=("ALTER TABLE drops ADD COLUMN queue INTEGER NOT NULL DEFAULT 0",),
        after=(),
    ),
    Step(6, before=(), after=()),
    # SQLite cannot change a CHECK in place: the table is made again and its rows moved.
    Step(
        7,
        before=(),
        after=(
            "CREATE TABLE audit_log_v7 (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, "
            f"actor TEXT NOT NULL, action TEXT NOT NULL CHECK (action IN {_ACTIONS}), "
            "drop_id INTEGER NOT NULL, before_json TEXT NULL, after_json TEXT NULL)",
            "INSERT INTO audit_log_v7 (id, at, actor, action, drop_id, before_json, after_json) "
            "SELECT id, at, actor, action, drop_id, before_json, after_json FROM audit_log",
            "DROP TABLE audit_log",
            "ALTER TABLE audit_log_v7 RENAME TO audit_log",
            "CREATE INDEX IF NOT EXISTS idx_audit_at ON audit_log (at)",
            "CREATE INDEX IF NOT EXISTS idx_audit_drop ON audit_log (drop_id, at)",
        ),
    ),
)


def pending(steps: tuple[Step, ...], version: int) -> list[Step]:
    """The steps a database at `version` still needs, in order."""
    return [step for step in steps if step.version > version]
