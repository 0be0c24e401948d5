"""Password hashing (sneakerd.passwords): no typed text is another password's pre-hash, old
hashes still open for their real password, and a login says when to re-hash."""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from sneakerd import passwords
from sneakerd.domain.accounts import typed_password_problem
from sneakerd.passwords import hash_password_sync, verify_password_sync

ROUNDS = 4
LONG = "correct horse battery staple, " * 4  # 120 bytes: over bcrypt's 72


def first_scheme_prehash(password: str) -> str:
    """The pre-hash of the first scheme, written out: base64(sha256(password))."""
    return base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


def first_scheme_hash(password: str, rounds: int = ROUNDS) -> str:
    """A hash as the first scheme stored it for a password over 72 bytes."""
    return bcrypt.hashpw(first_scheme_prehash(password).encode(), bcrypt.gensalt(rounds)).decode()


def test_a_long_password_verifies_and_a_near_miss_does_not() -> None:
    hashed = hash_password_sync(LONG, ROUNDS)
    assert verify_password_sync(LONG, hashed)
    assert not verify_password_sync(LONG[:-1] + "!", hashed)
    assert not verify_password_sync(LONG[:72], hashed)


def test_the_sha256_text_of_a_long_password_does_not_verify() -> None:
    hashed = hash_password_sync(LONG, ROUNDS)
    assert not verify_password_sync(first_scheme_prehash(LONG), hashed)


def test_the_sha256_text_does_not_open_a_hash_of_the_first_scheme() -> None:
    hashed = first_scheme_hash(LONG)
    assert not verify_password_sync(first_scheme_prehash(LONG), hashed)
    assert not passwords.check_password_sync(first_scheme_prehash(LONG), hashed, ROUNDS).ok


def test_a_hash_of_the_first_scheme_opens_for_its_long_password_and_asks_for_a_rehash() -> None:
    hashed = first_scheme_hash(LONG)
    verdict = passwords.check_password_sync(LONG, hashed, ROUNDS)
    assert verdict.ok and verdict.rehash
    assert not passwords.check_password_sync(LONG + "x", hashed, ROUNDS).ok


def test_the_first_scheme_is_never_tried_for_a_short_password() -> None:
    short = "hunter2hunter2"
    hashed = bcrypt.hashpw(first_scheme_prehash(short).encode(), bcrypt.gensalt(ROUNDS)).decode()
    assert not passwords.check_password_sync(short, hashed, ROUNDS).ok


def test_a_password_shaped_like_a_first_scheme_prehash_still_works_as_a_password() -> None:
    shaped = first_scheme_prehash("anything")
    hashed = hash_password_sync(shaped, ROUNDS)
    assert passwords.check_password_sync(shaped, hashed, ROUNDS) == passwords.Verdict(True)
    # ...but its bcrypt input is the separated pre-hash, never the typed text itself.
    assert not bcrypt.checkpw(shaped.encode(), hashed.encode())


@pytest.mark.parametrize("password", [LONG, "hunter2hunter2", "ünïcödé-pässwörd", "x" * 72])
def test_no_bcrypt_input_is_typeable(password: str) -> None:
    """A bcrypt input is either the typed password itself (72 bytes or less, no control
    character) or starts with a control character, which no typed password may hold."""
    prepared = passwords._prepare(password)
    if prepared != password.encode():
        assert prepared[:1] == b"\x01"
        assert typed_password_problem(prepared.decode()) is not None


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\x1f", "\x7f", "\x85"])
def test_control_characters_are_refused(char: str) -> None:
    password = f"hunter2{char}hunter2"
    assert typed_password_problem(password)
    with pytest.raises(ValueError):
        hash_password_sync(password, ROUNDS)
    good = hash_password_sync("hunter2hunter2", ROUNDS)
    assert not passwords.check_password_sync(password, good, ROUNDS).ok


@pytest.mark.parametrize("password", ["hunter2hunter2", "pässwörd 🔑", "with spaces  ", LONG])
def test_printable_passwords_are_accepted(password: str) -> None:
    assert typed_password_problem(password) is None


def test_a_hash_of_another_cost_asks_for_a_rehash() -> None:
    hashed = hash_password_sync("hunter2hunter2", 5)
    assert passwords.hash_cost(hashed) == 5
    assert passwords.check_password_sync("hunter2hunter2", hashed, 5) == passwords.Verdict(True)
    assert passwords.check_password_sync("hunter2hunter2", hashed, ROUNDS) == passwords.Verdict(
        True, rehash=True
    )
    assert passwords.check_password_sync("wrong-password", hashed, ROUNDS) == passwords.Verdict(
        False
    )


def test_hash_cost_reads_bcrypt_hashes_only() -> None:
    assert passwords.hash_cost(hash_password_sync("hunter2hunter2", ROUNDS)) == ROUNDS
    assert passwords.hash_cost("$2a$10$" + "a" * 53) == 10
    assert passwords.hash_cost("not a hash") is None
    assert not verify_password_sync("hunter2hunter2", "not a hash")


def test_the_decoy_is_made_at_the_asked_cost() -> None:
    assert passwords.hash_cost(passwords.decoy_hash(5)) == 5
