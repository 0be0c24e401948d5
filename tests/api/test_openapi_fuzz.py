"""schemathesis against the served OpenAPI document: no 5xx, no response that breaks it.

It fuzzes every operation with an admin token (so the admin routes are reached too), through
examples, boundary coverage, random data and stateful link-following. Requests that the schema
allows but the handlers refuse on a rule the document cannot express (endsAt after startsAt) are
fine by the contract, so `positive_data_acceptance` is not among the checks; everything about
our responses is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.timeout(300)
"""Above schemathesis' own 240 s: on a loaded machine one run of every operation takes 100-190 s,
past the suite's default of 120 s."""

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


async def test_schemathesis_finds_no_server_error_and_no_schema_break(api: Api) -> None:
    token = await api.admin()
    cli = Path(sys.executable).with_name("schemathesis")
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(cli),
            "run",
            api.server.url + "/api/docs/swagger.json",
            "--checks",
            CHECKS,
            "-H",
            f"Authorization: Bearer {token}",
            "--max-examples",
            os.environ.get("SNEAKERD_FUZZ_EXAMPLES", "40"),
            "--seed",
            "20261124",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "26 selected" in done.stdout or "selected" in done.stdout
