"""A program a test drives and the machine lacks is a skip that says why, or, where CI
requires it (SNEAKERD_REQUIRE_*=1), a failure."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool

MISSING = "sneakerd-no-such-program"


def test_a_missing_program_is_a_skip_naming_it_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SNEAKERD_REQUIRE_X", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"no `{MISSING}` on PATH \\(apt-get"):
        require_tool(MISSING, "SNEAKERD_REQUIRE_X", "apt-get install x")


def test_a_required_missing_program_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNEAKERD_REQUIRE_X", "1")
    with pytest.raises(pytest.fail.Exception, match="SNEAKERD_REQUIRE_X=1"):
        require_tool(MISSING, "SNEAKERD_REQUIRE_X", "apt-get install x")


def test_a_program_on_path_is_found() -> None:
    assert require_tool("sh", "SNEAKERD_REQUIRE_X", "-").endswith("/sh")
