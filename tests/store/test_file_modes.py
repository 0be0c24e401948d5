"""The embedded store's files hold password hashes and the token secret: owner-only (0600).

SQLite makes a new database file 0644 less the umask, and gives its -wal and -shm files the
database file's mode; the JWT secret kept beside it signs every token. Each must be 0600 under
the usual umask 022, from the moment it exists.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sneakerd.config import Settings
from sneakerd.store import open_store


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def modes(*paths: Path) -> dict[str, str]:
    """Each file's permission bits in octal, or "missing"."""
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) if p.exists() else "missing" for p in paths}


@pytest.mark.usefixtures("umask_022")
async def test_a_fresh_sqlite_store_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "data" / "sneakerd.db"
    store = await open_store(f"sqlite:///{db}")
    try:
        await store.init_schema()
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        assert modes(*files) == {f.name: "0o600" for f in files}
    finally:
        await store.close()
    assert modes(db) == {db.name: "0o600"}


@pytest.mark.usefixtures("umask_022")
async def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """Only creation is ours to decide: an operator's chosen mode is left alone."""
    db = tmp_path / "sneakerd.db"
    first = await open_store(f"sqlite:///{db}")
    await first.init_schema()
    await first.close()
    db.chmod(0o640)
    again = await open_store(f"sqlite:///{db}")
    await again.close()
    assert modes(db) == {db.name: "0o640"}


@pytest.mark.usefixtures("umask_022")
def test_the_jwt_secret_kept_beside_the_database_is_0600(tmp_path: Path) -> None:
    db = tmp_path / "sneakerd.db"
    Settings.from_mapping({"DATABASE_URL": f"sqlite:///{db}"}).with_jwt_secret()
    secret = db.with_name(db.name + ".jwt-secret")
    assert modes(secret) == {secret.name: "0o600"}
