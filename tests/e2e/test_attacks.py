"""The red team's attacks (issue items 1, 3, 4, 8 and 11), rerun against real server processes
on both stores; the report, one line an attack with held or BROKEN, is written to
`artifacts/attacks-<store>.txt` and shown when anything broke."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.e2e.attacks import TIGHT_ENV, report, run_all
from tests.serverproc import Server


def test_every_attack_is_held(store_url: str, tmp_path: Path) -> None:
    os.umask(0o022)  # as a fresh shell has it: the database file must still be 0600
    open_server = Server(store_url, {}, tmp_path).start()
    tight_server = Server(f"sqlite:///{tmp_path / 'tight.db'}", dict(TIGHT_ENV), tmp_path).start()
    try:
        verdicts = asyncio.run(run_all(open_server, tight_server))
    finally:
        open_server.stop()
        tight_server.stop()
    text = report(verdicts)
    artifacts = Path(os.environ.get("SNEAKERD_ARTIFACTS", "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    kind = "sqlite" if store_url.startswith("sqlite") else "mysql"
    (artifacts / f"attacks-{kind}.txt").write_text(text + "\n")
    print(text)
    assert len(verdicts) == 11
    assert all(v.held for v in verdicts), text
