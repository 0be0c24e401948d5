"""One identity per email address: the rule every lookup, uniqueness check and rate limit uses.

Two spellings that a person reads as the same address must be one account, and two that are
different addresses must be two, on every store. Databases disagree about that (MariaDB's
`utf8mb4_unicode_ci` folds accents, so `dávid@` would block `david@`; SQLite's NOCASE folds
ASCII only), so the rule is applied here, once, and the stores compare the result byte for byte:

- Unicode NFKC: compatibility forms are the plain character (fullwidth `a`, U+FF41, is `a`), and a
  decomposed accent equals the composed one.
- Then case folding (`ÁLICE` is `álice`, `STRASSE` is `straße`), and NFKC again, since folding
  can leave a string that is no longer normalised; the result is a fixed point.
- Surrounding whitespace is dropped, as a form field's stray space should be.
- An address holding an invisible, format or control character is refused rather than cleaned:
  `alice@example.com<ZWSP>` is not a spelling of anyone's address, and silently dropping such
  characters would let two visibly identical strings differ elsewhere (logs, mail servers).
  Unassigned, private-use and surrogate code points are refused too: a future Unicode version
  may give them a normalisation, and an identity must not change when Python's tables do.

Accents are kept: `alicé@` and `alice@` are two addresses (mail servers treat them so).
"""

from __future__ import annotations

import unicodedata

EMAIL_MAX_LENGTH = 254
"""The longest address (RFC 5321's path limit), counted on the normalised form."""

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) that are not already
# in a refused category: characters that render as nothing (Hangul fillers, variation
# selectors, the combining grapheme joiner, ...). Python's unicodedata has no such property.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class InvalidEmail(ValueError):
    """The text cannot name an account; `str(exc)` says why, for a 422 or a CLI error."""


def is_invisible(char: str) -> bool:
    """True for a control, format, separator-of-lines or otherwise invisible code point."""
    if unicodedata.category(char) in _REFUSED_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def normalize_email(raw: str) -> str:
    """The account identity of `raw`; raise `InvalidEmail` for an invisible character."""
    if any(is_invisible(c) for c in raw):
        raise InvalidEmail("Must not contain invisible, format or control characters.")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    # NFKC maps no visible character to an invisible one today; checked again so that the
    # stored identity holds the promise whatever the tables say.
    if any(is_invisible(c) for c in folded):
        raise InvalidEmail("Must not contain invisible, format or control characters.")
    return folded.strip()


def email_identity_or_none(raw: str) -> str | None:
    """The identity, or None when `raw` can name no account (a lookup then finds nobody)."""
    try:
        return normalize_email(raw)
    except InvalidEmail:
        return None
