"""The issue's races: 500 buyers for 50 units, and the original's `ab -n 100 -c 100` test."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.conftest import Api
from tests.api.helpers import get_drop
from tests.conftest import require_ab


@pytest.fixture
def ab() -> str:
    """Apache Bench: a skip saying so without it, unless SNEAKERD_REQUIRE_AB=1 (CI)."""
    return require_ab()


async def test_500_buyers_for_50_units_get_exactly_50_holds(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=50, perUserLimit=1)
    tokens = [token for _, token in await asyncio.gather(*(api.register() for _ in range(500)))]
    assert len(set(tokens)) == 500

    async def reserve(session: aiohttp.ClientSession, token: str) -> tuple[int, Any]:
        async with session.post(
            api.server.url + "/api/reservations",
            json={"dropId": drop["id"]},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = await asyncio.gather(*(reserve(session, token) for token in tokens))

    statuses = Counter(status for status, _ in answers)
    assert statuses == Counter({201: 50, 409: 450}), statuses
    codes = Counter(body["error"]["code"] for status, body in answers if status == 409)
    assert codes == Counter({"out_of_stock": 450}), codes
    holds = [body["reservation"] for status, body in answers if status == 201]
    assert len({h["id"] for h in holds}) == 50
    assert len({h["userId"] for h in holds}) == 50
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (0, 50, 0), after
    assert after["stock"] + after["reserved"] + after["sold"] == after["initialStock"] == 50
    assert after["status"] == "sold_out", after


def ab_numbers(report: str) -> dict[str, int]:
    """The counters of ab's report that the race test reads (absent lines count as 0)."""
    numbers = {}
    for label in ("Complete requests", "Failed requests", "Non-2xx responses", "Write errors"):
        found = re.search(rf"^{label}:\s+(\d+)", report, re.M)
        numbers[label] = int(found.group(1)) if found else 0
    breakdown = re.search(
        r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", report
    )
    for index, label in enumerate(("Connect", "Receive", "Length", "Exceptions"), start=1):
        numbers[label] = int(breakdown.group(index)) if breakdown else 0
    return numbers


def write_body(path: Path, drop_id: int) -> Path:
    path.write_text(json.dumps({"dropId": drop_id}))
    return path


async def test_ab_100_concurrent_reserves_by_one_user_make_exactly_two_holds(
    ab: str, api: Api, admin_token: str, tmp_path: Path
) -> None:
    drop = await api.drop(admin_token, initialStock=10, perUserLimit=2)
    _, token = await api.register()
    body_file = write_body(tmp_path / "reserve.json", drop["id"])
    proc = await asyncio.create_subprocess_exec(
        ab,
        "-n", "100",
        "-c", "100",
        "-l",  # responses differ in length (201 vs 409): not a failure
        "-s", "30",
        "-H", f"Authorization: Bearer {token}",
        "-T", "application/json",
        "-p", str(body_file),
        api.server.url + "/api/reservations",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    report = out.decode() + err.decode()
    assert proc.returncode == 0, report
    numbers = ab_numbers(report)
    assert numbers["Complete requests"] == 100, report
    assert numbers["Non-2xx responses"] == 98, report
    assert numbers["Failed requests"] == 0, report
    for label in ("Connect", "Receive", "Length", "Exceptions", "Write errors"):
        assert numbers[label] == 0, report

    status, listed, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, listed
    holds = [r for r in listed["reservations"] if r["dropId"] == drop["id"]]
    assert [r["status"] for r in holds] == ["active", "active"], holds
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (8, 2, 0), after
