"""What a price is: the one rule the REST schema and the CLI both apply.

A price comes as a string or a JSON number. A string must match `PRICE_PATTERN` exactly: ASCII
digits, at most two decimals, nothing else. `Decimal()` alone is far more lenient (it takes
`"1_000"`, `" 12 "`, `"1e3"`, `"-0"` and any Unicode digit such as `"٣"`), so the pattern is
checked first and `Decimal()` only converts what it already allows. A number must be finite,
non-negative and have at most two decimals, and a bool is not a number here. What is accepted
comes back as a canonical two-place amount, never `-0.00` (which a text column would keep).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

MAX_DIGITS = 10
"""Digits before the point: the stores keep DECIMAL(12, 2)."""
PRICE_PATTERN = rf"^[0-9]{{1,{MAX_DIGITS}}}(\.[0-9]{{1,2}})?$"
MAX_PRICE = Decimal("9" * MAX_DIGITS + ".99")
CENT = Decimal("0.01")
_PATTERN = re.compile(PRICE_PATTERN)
_SHAPE = 'digits with at most two decimals, like "199.99"'
_RANGE = f"between 0 and {MAX_PRICE} with at most two decimals"


class PriceError(ValueError):
    """Why a value is not a price; `kind` is "invalid" (not one's shape) or "range"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_price(value: object) -> Decimal:
    """The amount `value` stands for, or `PriceError`."""
    if isinstance(value, str):
        if _PATTERN.fullmatch(value) is None:
            raise PriceError("invalid", f"Not a valid price: {_SHAPE}.")
        return Decimal(value).quantize(CENT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PriceError("invalid", f"Not a valid price: {_SHAPE}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise PriceError("range", f"Must be {_RANGE}.")
    # repr of a float is its shortest round-trip form: 19.99 is "19.99", 0.1 + 0.2 is not "0.3".
    amount = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if amount < 0 or amount > MAX_PRICE or amount != amount.quantize(CENT):
        raise PriceError("range", f"Must be {_RANGE}.")
    return abs(amount.quantize(CENT))
