"""WEBHOOK_DELIVER=0: the server writes the events but does not send them; a separate
`sneakerd webhooks deliver` process does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from loadtest.receiver import Receiver
from tests.e2e.crowd import post, stage
from tests.e2e.test_webhooks_crash import cli
from tests.serverproc import Server


async def test_a_deliverer_process_of_its_own(store_url: str, tmp_path: Path) -> None:
    receiver = await Receiver().start()
    deliverer: subprocess.Popen[str] | None = None
    try:
        cli(store_url, tmp_path, "db", "init")
        receiver.secret = cli(store_url, tmp_path, "webhooks", "add", receiver.url, "--json")[
            "secret"
        ]
        server = Server(store_url, {"WEBHOOK_DELIVER": "0"}, tmp_path).start()
        try:
            async with aiohttp.ClientSession() as http:
                scene = await stage(http, server, users=1, prefix="ext", initialStock=5)
                status, body = await post(
                    http, server, "/api/reservations", {"dropId": scene.drop_id}, scene.tokens[0]
                )
                assert status == 201, body
                await asyncio.sleep(1.5)
                assert receiver.got == []  # written, not sent by the server
                deliverer = _deliverer(store_url, tmp_path)
                deadline = time.monotonic() + 30
                while not receiver.got:
                    assert time.monotonic() < deadline and deliverer.poll() is None
                    await asyncio.sleep(0.1)
                [got] = receiver.got
                assert got.type == "reservation.created" and got.signed
                assert got.payload["data"]["reservation"]["id"] == body["reservation"]["id"]
        finally:
            out = server.stop()
        assert "Traceback" not in out
    finally:
        if deliverer is not None:
            deliverer.send_signal(signal.SIGTERM)
            printed, _ = deliverer.communicate(timeout=20)
            assert deliverer.returncode == 0 and "Traceback" not in printed, printed
        await receiver.stop()


def _deliverer(store_url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "sneakerd", "webhooks", "deliver", "--db", store_url],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
