"""The rules of `sneakerd.domain.listing` and the account rules that are whole-text patterns."""

from __future__ import annotations

import pytest

from sneakerd.domain import accounts, listing


@pytest.mark.parametrize(
    "url", ["https://img.example.com/a.png\n", "http://x.io/a b", "ftp://x.io"]
)
def test_an_image_url_is_checked_whole(url: str) -> None:
    assert listing.image_url_problems(url) == ["Must be an http:// or https:// URL."]


def test_a_good_image_url_passes() -> None:
    assert listing.image_url_problems("https://img.example.com/aj1.png?w=2") == []


@pytest.mark.parametrize("name", ["abc\n", "abc\r", "\nabc"])
def test_a_username_is_checked_whole(name: str) -> None:
    assert accounts.username_problems(name) == ["Use only letters, digits, _ . and -."]


@pytest.mark.parametrize(
    ("text", "ms"), [("1970-01-01T00:00:00Z", 0), ("9999-12-31T23:59:59.999Z", 253402300799999)]
)
def test_instants_run_from_1970_to_the_end_of_9999(text: str, ms: int) -> None:
    assert listing.parse_instant(text) == ms


@pytest.mark.parametrize("text", ["1969-12-31T23:59:59Z", "x" * 41, 17, "tomorrow"])
def test_other_instants_are_refused(text: object) -> None:
    with pytest.raises(listing.InvalidInstant):
        listing.parse_instant(text)
