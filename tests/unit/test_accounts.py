"""The email identity rule (sneakerd.domain.accounts): NFKC, case folding, invisible refused."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sneakerd.domain.accounts import (
    InvalidEmail,
    email_identity_or_none,
    is_invisible,
    normalize_email,
)


@pytest.mark.parametrize(
    ("raw", "identity"),
    [
        ("alice@example.com", "alice@example.com"),
        ("ALICE@Example.COM", "alice@example.com"),
        ("\uff41lice@example.com", "alice@example.com"),  # fullwidth a
        ("\uff21\uff2c\uff29\uff23\uff25@example.com", "alice@example.com"),  # fullwidth ALICE
        ("ÁLICE@example.com", "álice@example.com"),
        ("A\u0301lice@example.com", "álice@example.com"),  # decomposed accent
        ("STRASSE@example.com", "strasse@example.com"),
        ("straße@example.com", "strasse@example.com"),
        ("  alice@example.com\u00a0", "alice@example.com"),  # surrounding (no-break) spaces
        ("ﬁ@example.com", "fi@example.com"),  # ligature
    ],
)
def test_one_identity_for_the_same_address(raw: str, identity: str) -> None:
    assert normalize_email(raw) == identity


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice@example.com", "alicé@example.com"),
        ("alice@example.com", "álice@example.com"),
        ("david@example.com", "dávid@example.com"),
        ("alice@example.com", "al1ce@example.com"),
    ],
)
def test_different_addresses_stay_different(one: str, other: str) -> None:
    assert normalize_email(one) != normalize_email(other)


@pytest.mark.parametrize(
    "char",
    [
        "\u200b",  # zero-width space (Cf)
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark
        "\u00ad",  # soft hyphen
        "\u202e",  # right-to-left override
        "\u034f",  # combining grapheme joiner (Mn, default-ignorable)
        "\u3164",  # Hangul filler (Lo, default-ignorable)
        "\ufe0f",  # variation selector
        "\U000e0041",  # tag letter
        "\u2028",  # line separator (Zl)
        "\u2029",  # paragraph separator (Zp)
        "\x00",
        "\t",
        "\n",
        "\x7f",
        "\x85",
        "\ue000",  # private use
        "\U0010ffff",  # unassigned (Cn)
    ],
)
def test_invisible_format_and_control_characters_are_refused(char: str) -> None:
    assert is_invisible(char)
    for raw in (f"ali{char}ce@example.com", f"alice@example.com{char}", f"{char}alice@x.io"):
        with pytest.raises(InvalidEmail):
            normalize_email(raw)
        assert email_identity_or_none(raw) is None


@pytest.mark.parametrize("char", ["a", "é", "\u0301", "@", ".", "+", "ß", "字", " "])
def test_visible_characters_are_not_invisible(char: str) -> None:
    assert not is_invisible(char)


@given(st.text(max_size=40))
def test_the_identity_is_a_fixed_point(raw: str) -> None:
    identity = email_identity_or_none(raw)
    if identity is None:
        assert any(is_invisible(c) for c in raw)
        return
    assert normalize_email(identity) == identity
    assert unicodedata.is_normalized("NFKC", identity)


@given(st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1))
def test_case_and_width_variants_of_ascii_share_one_identity(local: str) -> None:
    plain = normalize_email(f"{local}@example.com")
    wide = "".join(chr(ord(c) + 0xFEE0) for c in local)
    assert normalize_email(f"{local.upper()}@EXAMPLE.com") == plain
    assert normalize_email(f"{wide}@example.com") == plain
