"""The one rule for a price (`sneakerd.domain.money`), as the REST schema and the CLI use it.

A string must match the documented pattern exactly (ASCII digits, at most two decimals, no sign,
no spaces, no exponent, no underscores); a number must be finite, non-negative and have at most
two decimals. Whatever is accepted comes back as a canonical two-place amount (never -0.00).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from sneakerd.domain.money import MAX_PRICE, PRICE_PATTERN, PriceError, parse_price
from sneakerd.web.schemas import PRICE_DOC


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        ("199.99", "199.99"),
        ("15", "15.00"),
        ("0", "0.00"),
        ("0.5", "0.50"),
        ("007.10", "7.10"),
        ("9999999999.99", "9999999999.99"),
        (120, "120.00"),
        (0, "0.00"),
        (99.5, "99.50"),
        (0.1, "0.10"),
        (19.99, "19.99"),
        (-0.0, "0.00"),
    ],
)
def test_accepts_what_the_pattern_and_the_number_rule_allow(value: object, amount: str) -> None:
    parsed = parse_price(value)
    assert str(parsed) == amount
    assert not parsed.is_signed()


@pytest.mark.parametrize(
    "value",
    [
        "1_000",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: Decimal() and \d take it, the pattern does not
        "\uff11",  # FULLWIDTH DIGIT ONE
        " 12 ",
        "12 ",
        "\t12",
        "1e3",
        "1E2",
        "-0",
        "-0.00",
        "-5.00",
        "+5",
        "1.",
        ".5",
        "1.001",
        "12,50",
        "0x10",
        "Infinity",
        "NaN",
        "",
        "12.5\n",
        "99999999999",
        "10000000000.00",
    ],
)
def test_refuses_a_string_outside_the_pattern(value: str) -> None:
    with pytest.raises(PriceError):
        parse_price(value)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        [1],
        {"amount": 1},
        Decimal("1.00"),
        -1,
        -0.01,
        1.005,
        0.1 + 0.2,
        1e-3,
        float("inf"),
        float("-inf"),
        float("nan"),
        10_000_000_000,
        1e10,
        1e300,
    ],
)
def test_refuses_a_number_or_value_outside_the_rule(value: object) -> None:
    with pytest.raises(PriceError):
        parse_price(value)


def test_a_refusal_says_what_a_price_looks_like() -> None:
    with pytest.raises(PriceError) as refused:
        parse_price("1e3")
    assert "199.99" in str(refused.value)


def test_the_documented_pattern_is_the_rule() -> None:
    assert PRICE_DOC["pattern"] == PRICE_PATTERN
    documented = re.compile(PRICE_PATTERN)
    for text in ("0", "1.5", "12.34", "9999999999.99"):
        assert documented.fullmatch(text) and parse_price(text) <= MAX_PRICE
    for text in ("1_000", "\u0663", " 12 ", "1e3", "-0"):
        assert not documented.fullmatch(text)
