"""A client generated from the served OpenAPI 3 document builds and talks to a real server.

openapi-python-client turns /api/docs/openapi.json into a package (into a temporary folder);
the test imports it and uses it as a client author would: register, list drops, read the
profile with the token through the bearer scheme, and read a typed error (whose `code` must be
one of the document's enum, or the generated model refuses it).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sneakerd.web.openapi3 import OPENAPI_JSON
from tests.api.conftest import Api

pytestmark = pytest.mark.timeout(180)


def generate(document: dict[str, Any], folder: Path) -> str:
    """Generate a client package from `document` into `folder`; its import name."""
    name = f"sneakerd_client_{uuid.uuid4().hex[:8]}"
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "config.json").write_text(
        json.dumps({"package_name_override": name, "post_hooks": []})
    )
    cli = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [
            str(cli),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--config",
            str(folder / "config.json"),
            "--meta",
            "none",
            "--output-path",
            str(folder / name),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    return name


def load(folder: Path, name: str, *modules: str) -> list[ModuleType]:
    sys.path.insert(0, str(folder))
    try:
        return [importlib.import_module(f"{name}.{module}") for module in modules]
    finally:
        sys.path.remove(str(folder))


def use(base_url: str, name: str, folder: Path) -> dict[str, Any]:
    """What a client author would write with the generated package (blocking, as it is)."""
    client_mod, register, list_drops, profile, get_drop, models = load(
        folder,
        name,
        "client",
        "api.users.register",
        "api.drops.list_drops",
        "api.users.profile",
        "api.drops.get_drop",
        "models",
    )
    username = f"gen_{uuid.uuid4().hex[:8]}"
    with client_mod.Client(base_url=base_url, raise_on_unexpected_status=True) as client:
        registered = register.sync(
            client=client,
            body=models.RegisterRequest(
                username=username, email=f"{username}@example.com", password="hunter2hunter2"
            ),
        )
        drops = list_drops.sync(client=client, limit=5)
        missing = get_drop.sync_detailed(client=client, id=999_999)
    with client_mod.AuthenticatedClient(base_url=base_url, token=registered.token) as authed:
        me = profile.sync(client=authed)
    return {
        "registered": registered.user.username,
        "token_type": type(registered).__name__,
        "drops": type(drops).__name__,
        "drops_list": isinstance(drops.drops, list),
        "me": me.user.username,
        "missing_status": int(missing.status_code),
        "missing_code": missing.parsed.error.code.value,
        "username": username,
    }


async def test_a_generated_python_client_builds_and_works(api: Api, tmp_path: Path) -> None:
    status, document, _ = await api.call("GET", OPENAPI_JSON)
    assert status == 200
    name = await asyncio.to_thread(generate, document, tmp_path)
    try:
        seen = await asyncio.to_thread(use, api.server.url, name, tmp_path)
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
    assert seen["registered"] == seen["me"] == seen["username"], seen
    assert (seen["token_type"], seen["drops"], seen["drops_list"]) == ("AuthOut", "DropList", True)
    assert (seen["missing_status"], seen["missing_code"]) == (404, "not_found"), seen
