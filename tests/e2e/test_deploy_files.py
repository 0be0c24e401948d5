"""The deployment files: the image runs the package as a non-root user with a health check,
compose.yaml validates and gives its two nodes one database, one Redis and one JWT secret, and
.dockerignore keeps the tree's caches and secrets out of the image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRET = "s" * 40


def _compose_command() -> list[str]:
    """`docker compose` (the plugin), else Debian's `docker-compose`; neither needs a daemon
    for `config`. Without either the validation is skipped, saying so."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.skip("no `docker compose` plugin and no docker-compose (apt-get install docker-compose)")


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "DB_PASSWORD")}
    return subprocess.run(
        [*_compose_command(), "-f", str(REPO / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**clean, **env},
    )


def test_compose_config_validates_and_the_nodes_share_their_stores() -> None:
    done = _config({"JWT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = yaml.safe_load(done.stdout)["services"]
    assert {"mariadb", "redis", "init", "node-a", "node-b", "nginx"} <= set(services)
    nodes = [services["node-a"]["environment"], services["node-b"]["environment"]]
    for shared in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "TRUSTED_PROXIES"):
        assert nodes[0][shared] == nodes[1][shared], shared
    assert nodes[0]["JWT_SECRET"] == SECRET
    assert (
        nodes[0]["DATABASE_URL"].startswith("mysql://")
        and "@mariadb:3306/" in nodes[0]["DATABASE_URL"]
    )
    assert nodes[0]["REDIS_URL"] == "redis://redis:6379/0"
    assert {n["NODE_ID"] for n in nodes} == {"node-a", "node-b"}
    assert {n["NODE_URL"] for n in nodes} == {"http://node-a:5000", "http://node-b:5000"}
    # The balancer is the one published port, on loopback (the two tools spell it apart).
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["nginx"] and len(published["nginx"]) == 1
    port = str(published["nginx"][0])
    assert "127.0.0.1" in port and "8080" in port, port


def test_compose_refuses_to_start_without_a_jwt_secret() -> None:
    done = _config({})
    assert done.returncode != 0
    assert "JWT_SECRET" in done.stderr


def test_the_image_runs_the_package_as_a_non_root_user_with_a_health_check() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert next(line for line in lines if line) == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert lines[-1] == 'CMD ["sneakerd", "serve", "--host", "0.0.0.0"]'


def test_dockerignore_keeps_the_trees_caches_and_secrets_out() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "*.db", "*.jwt-secret", "tests", "loadtest"} <= ignored
    # What the Dockerfile copies is not ignored.
    assert not ignored & {"pyproject.toml", "README.md", "sneakerd"}


def test_the_image_health_check_command_runs() -> None:
    """The HEALTHCHECK's Python line is valid Python (a typo would mark every node unhealthy)."""
    text = (REPO / "Dockerfile").read_text()
    command = text.split('CMD ["python", "-c", "', 1)[1].split('"]', 1)[0]
    compile(command, "HEALTHCHECK", "exec")


def test_the_readme_states_the_python_it_needs_and_starts_with_the_demo() -> None:
    needs = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    readme = (REPO / "README.md").read_text()
    assert needs == ">=3.11" and "Python 3.11 or newer" in readme and needs in readme
    first = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first.strip().endswith("sneakerd serve --demo"), first
