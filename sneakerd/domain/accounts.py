"""What an account may be: its email identity and address, its username, its password.

These are the rules the REST schemas and the operator CLI both call, so the two refuse the same
inputs for the same reasons. Each check answers the messages a 422 lists (an empty list when
the value is fine); the edges only parse and report them.

One identity per email address: the rule every lookup, uniqueness check and rate limit uses.
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

import re
import unicodedata

EMAIL_MAX_LENGTH = 254
"""The longest address (RFC 5321's path limit), counted on the normalised form."""
EMAIL_MAX_RAW_LENGTH = 4 * EMAIL_MAX_LENGTH
"""The longest text normalised at all: it bounds the work an over-long input can cause."""
USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 32
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""For the document (an ECMA pattern: `$` ends the text); `username_problems` checks it whole."""
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
OFFERED_PASSWORD_MAX_LENGTH = 1024
"""A password offered to log in or to confirm a change may be any typed text up to this long
(it bounds the hashing work); only a new password is held to the 8-128 rule."""

_USERNAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
_PASSWORD_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})

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


def email_identity(raw: str) -> str:
    """The identity of an email a person gave (a request body, a command line); raise
    `InvalidEmail` for an over-long text or an invisible character."""
    if len(raw) > EMAIL_MAX_RAW_LENGTH:
        raise InvalidEmail(f"Longer than maximum length {EMAIL_MAX_LENGTH}.")
    return normalize_email(raw)


def email_length_problems(identity: str) -> list[str]:
    """An identity too short or too long to be anyone's (a login checks only this)."""
    if 1 <= len(identity) <= EMAIL_MAX_LENGTH:
        return []
    return [f"Length must be between 1 and {EMAIL_MAX_LENGTH}."]


def address_problems(identity: str) -> list[str]:
    """Why `identity` cannot be a new account's address; [] when it can. The shape is
    marshmallow 3's `validate.Email` (the API's rule before it moved here), kept exactly."""
    problems = email_length_problems(identity)
    if not _is_address(identity):
        problems.append("Not a valid email address.")
    return problems


_EMAIL_USER = re.compile(
    r"(^[-!#$%&'*+/=?^`{}|~\w]+(\.[-!#$%&'*+/=?^`{}|~\w]+)*\Z"  # dot-atom
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z)',
    re.IGNORECASE,
)
_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+(?:[A-Z]{2,6}|[A-Z0-9-]{2,})\Z"
    r"|^\[(25[0-5]|2[0-4]\d|[0-1]?\d?\d)(\.(25[0-5]|2[0-4]\d|[0-1]?\d?\d)){3}\]\Z",
    re.IGNORECASE,
)


def _is_address(text: str) -> bool:
    if "@" not in text:
        return False
    user, domain = text.rsplit("@", 1)
    if not _EMAIL_USER.match(user):
        return False
    if domain == "localhost" or _EMAIL_DOMAIN.match(domain):
        return True
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _EMAIL_DOMAIN.match(ascii_domain) is not None


def username_problems(username: str) -> list[str]:
    """Why `username` cannot be one; [] when it can."""
    problems = []
    if not USERNAME_MIN_LENGTH <= len(username) <= USERNAME_MAX_LENGTH:
        problems.append(f"Length must be between {USERNAME_MIN_LENGTH} and {USERNAME_MAX_LENGTH}.")
    if _USERNAME_CHARS.fullmatch(username) is None:
        problems.append("Use only letters, digits, _ . and -.")
    return problems


def typed_password_problem(password: str) -> str | None:
    """Why `password` cannot be any typed password, new or offered at a login; None if it can.

    No control character: the hashing's pre-hash starts with one, so no typed password is ever
    mistaken for a pre-hash (`sneakerd.passwords` says why that matters)."""
    if any(unicodedata.category(c) in _PASSWORD_REFUSED_CATEGORIES for c in password):
        return "Must not contain control characters."
    return None


def new_password_problems(password: str) -> list[str]:
    """Why `password` cannot be an account's new password; [] when it can."""
    problems = []
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        problems.append(f"Must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long.")
    typed = typed_password_problem(password)
    if typed is not None:
        problems.append(typed)
    return problems


def offered_password_problems(password: str) -> list[str]:
    """Why `password` cannot even be tried against an account's hash; [] when it can."""
    problems = []
    if not 1 <= len(password) <= OFFERED_PASSWORD_MAX_LENGTH:
        problems.append(f"Length must be between 1 and {OFFERED_PASSWORD_MAX_LENGTH}.")
    typed = typed_password_problem(password)
    if typed is not None:
        problems.append(typed)
    return problems
