"""The raffle's operator commands as an operator runs them: `drops create --mode raffle` held
to the API's rules, and `raffle verify`'s answers before the draw and on what it cannot check."""

from __future__ import annotations

import json

from tests.e2e.test_cli import sneakerd


def test_a_raffle_made_and_checked_from_the_command_line(store_url: str) -> None:
    assert sneakerd("db", "init", "--db", store_url).returncode == 0
    base = ("drops", "create", "--db", store_url, "--name", "Draw", "--price", "99", "--stock", "3")
    missing = sneakerd(*base, "--mode", "raffle", "--entries-open-at", "2030-01-01T00:00:00Z")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1, missing.stderr
    assert "--entries-close-at" in missing.stderr
    backwards = sneakerd(
        *base,
        "--mode",
        "raffle",
        "--entries-open-at",
        "2030-01-02T00:00:00Z",
        "--entries-close-at",
        "2030-01-01T00:00:00Z",
    )
    assert backwards.returncode == 1 and "after entriesOpenAt" in backwards.stderr
    made = sneakerd(
        *base,
        "--mode",
        "raffle",
        "--entries-open-at",
        "2030-01-01T00:00:00Z",
        "--entries-close-at",
        "2030-01-02T00:00:00Z",
        "--claim-seconds",
        "300",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    drop = json.loads(made.stdout)["drop"]
    assert (drop["mode"], drop["claimSeconds"]) == ("raffle", 300)
    assert drop["raffle"]["seedCommitment"] is None, "not shown before entries open"

    pending = sneakerd("raffle", "verify", str(drop["id"]), "--db", store_url, "--json")
    assert pending.returncode == 0, pending.stderr
    assert json.loads(pending.stdout) | {"checks": []} == {
        "dropId": drop["id"],
        "ok": True,
        "drawn": False,
        "checks": [],
    }
    plain = json.loads(sneakerd(*base, "--json").stdout)["drop"]
    assert plain["mode"] == "fcfs" and plain["raffle"] is None
    for args, reason in (
        ((str(plain["id"]), "--db", store_url), "not a raffle"),
        (("999999", "--db", store_url), "no drop 999999"),
        ((str(drop["id"]), "--db", store_url, "--url", "http://127.0.0.1:9"), "not both"),
        ((str(drop["id"]), "--url", "ftp://example.com"), "http"),
    ):
        refused = sneakerd("raffle", "verify", *args)
        assert refused.returncode == 1 and reason in refused.stderr, (args, refused.stderr)
