"""Account identities in the store, on SQLite and MariaDB alike: one identity per email (NFKC,
then case folding), compared byte for byte, whatever the database's collation would fold."""

from __future__ import annotations

import pytest

from sneakerd import errors
from sneakerd.domain.accounts import InvalidEmail
from sneakerd.domain.model import Role
from sneakerd.store import Store
from tests.store.helpers import ms, sql

NOW = 1_795_510_800_123


async def make(store: Store, name: str, email: str) -> int:
    return (await store.create_user(name, email, "hash-" + name, Role.CUSTOMER, NOW)).id


async def test_accented_and_plain_emails_are_two_accounts(store: Store) -> None:
    david = await make(store, "david", "david@example.com")
    accented = await make(store, "david2", "dávid@example.com")
    alice = await make(store, "alice", "alice@example.com")
    other = await make(store, "alice2", "alicé@example.com")
    assert len({david, accented, alice, other}) == 4
    for email, user_id in (
        ("david@example.com", david),
        ("dávid@example.com", accented),
        ("alice@example.com", alice),
        ("alicé@example.com", other),
    ):
        found = await store.user_by_email(email)
        assert found is not None and found[0].id == user_id, email


async def test_an_accented_email_registered_first_leaves_the_plain_one_free(store: Store) -> None:
    accented = await make(store, "one", "dávid@example.com")
    assert await store.user_by_email("david@example.com") is None
    plain = await make(store, "two", "david@example.com")
    assert plain != accented


@pytest.mark.parametrize(
    "variant",
    [
        "ÁLICE@EXAMPLE.COM",
        "A\u0301lice@example.com",  # decomposed accent
        "\uff41\u0301lice@example.com",  # fullwidth a, decomposed accent
        "  álice@example.com ",
    ],
)
async def test_variants_of_one_identity_find_and_block_the_same_account(
    store: Store, variant: str
) -> None:
    user_id = await make(store, "alice", "álice@example.com")
    found = await store.user_by_email(variant)
    assert found is not None and found[0].id == user_id
    with pytest.raises(errors.EmailTaken):
        await make(store, "alice2", variant)


async def test_the_stored_email_is_the_identity(store: Store) -> None:
    user = await store.create_user("strasse", "STRASSE@\uff25xample.com", "h", Role.CUSTOMER, NOW)
    assert user.email == "strasse@example.com"
    rows = await sql(store, "SELECT email FROM users WHERE id = %s", (user.id,))
    assert [tuple(r) for r in rows] == [("strasse@example.com",)]
    found = await store.user_by_email("straße@example.com")
    assert found is not None and found[0].id == user.id  # ß folds to ss


async def test_the_email_column_compares_byte_for_byte(store: Store) -> None:
    """A row written by hand (an operator with SQL) is not found by a folded look-alike."""
    await sql(
        store,
        "INSERT INTO users (username, email, password_hash, role, created_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        ("raw", "alice@example.com", "h", "customer", ms(store, NOW)),
    )
    await make(store, "accent", "alicé@example.com")  # unicode_ci would call this a duplicate
    rows = await sql(store, "SELECT username FROM users WHERE email = %s", ("ALICE@example.com",))
    assert rows == []


@pytest.mark.parametrize(
    "email", ["alice@example.com\u200b", "ali\u00adce@example.com", "alice@exa\x00mple.com"]
)
async def test_an_email_with_an_invisible_character_names_nobody(store: Store, email: str) -> None:
    await make(store, "alice", "alice@example.com")
    assert await store.user_by_email(email) is None
    assert await store.set_role(email, Role.ADMIN) is None
    with pytest.raises(InvalidEmail):
        await make(store, "alice2", email)
    found = await store.user_by_email("alice@example.com")
    assert found is not None and found[0].role is Role.CUSTOMER


async def test_set_role_uses_the_identity(store: Store) -> None:
    alice = await make(store, "alice", "alice@example.com")
    assert await store.set_role("Alicé@example.com", Role.ADMIN) is None
    promoted = await store.set_role("\uff21LICE@example.com", Role.ADMIN)
    assert promoted is not None and promoted.id == alice and promoted.role is Role.ADMIN


async def test_replace_password_hash_swaps_only_the_hash_it_was_given(store: Store) -> None:
    user_id = await make(store, "alice", "alice@example.com")
    assert await store.replace_password_hash(user_id, "hash-alice", "$2b$04$new")
    assert not await store.replace_password_hash(user_id, "hash-alice", "$2b$04$stale")
    assert not await store.replace_password_hash(user_id, "$2B$04$NEW", "$2b$04$case")
    assert not await store.replace_password_hash(999_999, "$2b$04$new", "$2b$04$nobody")
    found = await store.user_by_email("alice@example.com")
    assert found is not None and found[1] == "$2b$04$new"


async def test_update_user_changes_what_is_given(store: Store) -> None:
    user_id = await make(store, "alice", "alice@example.com")
    await make(store, "bob", "bob@example.com")
    renamed = await store.update_user(user_id, username="alice2")
    assert renamed is not None and (renamed.username, renamed.email) == (
        "alice2",
        "alice@example.com",
    )
    rehashed = await store.update_user(user_id, password_hash="$2b$04$other")
    assert rehashed == renamed
    found = await store.user_by_email("alice@example.com")
    assert found == (renamed, "$2b$04$other")
    assert await store.update_user(user_id) == renamed
    assert await store.update_user(user_id, username="ALICE2") is not None  # its own name
    for taken in ("bob", "BOB"):
        with pytest.raises(errors.UsernameTaken):
            await store.update_user(user_id, username=taken, password_hash="$2b$04$lost")
    found = await store.user_by_email("alice@example.com")
    assert found is not None and found[1] == "$2b$04$other"  # nothing of a refused update
    assert await store.update_user(999_999, username="ghost") is None


async def test_a_role_given_again_changes_nothing_and_logs_nothing(store: Store) -> None:
    """`sneakerd users promote` on an admin said "is now an admin" and logged a change whose
    before and after were the same, once per call."""
    await make(store, "alice", "alice@example.com")
    first = await store.set_role("alice@example.com", Role.ADMIN, actor="cli", now=1)
    again = await store.set_role("alice@example.com", Role.ADMIN, actor="cli", now=2)
    assert first is not None and again is not None and again.role is Role.ADMIN
    page = await store.audit_entries()
    assert [e.entry.action.value for e in page.items] == ["set_role"], page.items
