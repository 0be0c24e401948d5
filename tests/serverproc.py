"""A real `sneakerd serve` process on a free loopback port, for the api, ws and e2e tiers.

Starting, waiting for /readyz and stopping are `loadtest.servers`' (the one home of server
processes); this adds what tests want: the test environment, the output kept in a pipe and
returned by `stop`, and an admin made with the operator CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.servers import QUIET_ENV, free_port, stop_process, wait_ready

JWT_SECRET = "test-secret-" + "x" * 40


@dataclass
class Server:
    db_url: str
    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    args: tuple[str, ...] = ()
    """More `sneakerd serve` flags (`--demo`)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwt_secret(self) -> str:
        return self.env.get("JWT_SECRET", JWT_SECRET)

    def start(self, timeout: float = 30) -> Server:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "DB_HOST", "JWT_SECRET")
        }
        env.update({"JWT_SECRET": JWT_SECRET, **QUIET_ENV, "DATABASE_URL": self.db_url})
        env.update(self.env)
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sneakerd", "serve", "--port", str(self.port), *self.args],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc, stopped = self.proc, []

        def output() -> str:  # after an exit the pipe is still open; after a stop, it is read
            return stopped[0] if stopped else (proc.stdout.read() if proc.stdout else "")

        wait_ready(
            proc,
            self.url + "/readyz",
            name="sneakerd serve",
            timeout=timeout,
            output=output,
            stop=lambda: stopped.append(self.stop()),
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> str:
        """Stop the server; return everything it printed."""
        if self.proc is None:
            return ""
        _, out = stop_process(self.proc, sig, timeout)
        self.proc = None
        return out or ""

    def admin_token_cli(self, email: str, username: str, password: str) -> None:
        """Create an admin with the operator CLI, as an operator would."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sneakerd",
                "users",
                "create-admin",
                "--email",
                email,
                "--username",
                username,
                "--db",
                self.db_url,
            ],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.cwd,
            env=self.env,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
