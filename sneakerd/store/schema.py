"""The schema: reading a dialect's .sql file, creating the tables, and upgrading a database
of an older version with the steps in `migrations`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources

from sneakerd import errors
from sneakerd.domain.accounts import email_identity_or_none
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import SCHEMA_VERSION
from sneakerd.store.migrations import pending

log = logging.getLogger(__name__)


def statements(filename: str) -> list[str]:
    """The statements of a schema file of this package (`mysql.sql`, `sqlite.sql`)."""
    return parse(resources.files("sneakerd.store").joinpath(filename).read_text())


def parse(text: str) -> list[str]:
    """A schema script's statements: `--` comment lines dropped, split at each `;` (the
    scripts hold no `;` inside a statement or an end-of-line comment)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def schema_version(db: Adapter) -> int | None:
    """The database's schema version; None when it has no schema yet. A failing read counts
    as that (a missing table is a driver error), so an unreachable database also gives None
    and the next statement reports it."""
    try:
        rows = await db._read("SELECT MAX(version) FROM schema_version")
    except errors.Unavailable:
        return None
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def _quiet(line: str) -> None:
    """No progress lines (the server's start-up)."""


async def init_schema(db: Adapter, *, progress: Callable[[str], None] = _quiet) -> None:
    """Create the schema, or bring a database of an older version up to this one: each
    pending step's `before`, then the schema script, then each step's `after`, recording each
    step's version as it completes. `progress` is told of each stage as it starts (`sneakerd
    db migrate` prints them: an ALTER of a big table can take minutes)."""
    version = await schema_version(db)
    if version is not None and version > SCHEMA_VERSION:
        raise errors.SchemaTooNew(
            f"the database is at schema version {version}, newer than this sneakerd's "
            f"{SCHEMA_VERSION}: upgrade sneakerd instead"
        )
    if version == SCHEMA_VERSION:
        # Already current: no DDL at all, so many processes starting at once on one database
        # (serve --workers N) never run CREATE statements against each other.
        return
    steps = pending(db.MIGRATIONS, version) if version is not None else []
    for step in steps:
        progress(f"migrate: step {step.version}: altering tables ({len(step.before)} statements)")
        async with db._transaction() as tx:
            for statement in step.before:
                await tx.execute(statement)
    progress(f"migrate: creating the tables of version {SCHEMA_VERSION} that are missing")
    async with db._transaction() as tx:
        for statement in db._schema_statements():
            # While upgrading, the version is recorded only once every step has run.
            if not (steps and "INTO schema_version" in statement):
                await tx.execute(statement)
    for step in steps:
        if step.emails:
            progress(f"migrate: step {step.version}: rewriting emails to account identities")
            await _rewrite_emails(db)
        progress(f"migrate: step {step.version}: moving rows ({len(step.after)} statements)")
        async with db._transaction() as tx:
            for statement in step.after:
                await tx.execute(statement)
            await tx.execute("DELETE FROM schema_version WHERE version = %s", (step.version,))
            await tx.execute("INSERT INTO schema_version (version) VALUES (%s)", (step.version,))


async def _rewrite_emails(db: Adapter) -> None:
    """Store each email as its account identity. An email whose identity another account
    already has, or that can name no account, is left as it was and reported: which of
    the two is the real owner is the operator's call."""
    rows = await db._read("SELECT id, email FROM users ORDER BY id")
    taken = {email for _, email in rows}
    for user_id, email in rows:
        identity = email_identity_or_none(email)
        if identity == email:
            continue
        if identity is None or identity in taken:
            log.warning("user %s: email %r kept as it was (its identity is taken)", user_id, email)
            continue
        async with db._transaction() as tx:
            await tx.execute("UPDATE users SET email = %s WHERE id = %s", (identity, user_id))
        taken.add(identity)
