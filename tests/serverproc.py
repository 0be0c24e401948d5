"""A real `sneakerd serve` process on a free loopback port, for the api, ws and e2e tiers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

JWT_SECRET = "test-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    db_url: str
    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None

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
        env.update(
            {
                "JWT_SECRET": JWT_SECRET,
                "BCRYPT_ROUNDS": "4",
                "RATE_LIMIT_AUTH": "0",
                "RATE_LIMIT_RESERVE": "0",
                # One test process plays a whole crowd from 127.0.0.1; a test of these caps
                # sets them itself.
                "MAX_CONNECTIONS_PER_IP": "0",
                "MAX_WEBSOCKETS_PER_IP": "0",
                "DATABASE_URL": self.db_url,
            }
        )
        env.update(self.env)
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sneakerd", "serve", "--port", str(self.port)],
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError(f"sneakerd serve exited early:\n{out}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sneakerd serve did not become ready")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> str:
        """Stop the server; return everything it printed."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
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
