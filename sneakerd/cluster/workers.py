"""`sneakerd serve --workers N`: a supervisor process and the N worker processes it keeps running.

Each worker is a whole node (its own event loop, store pool and actors): it is
`python -m sneakerd serve` with its index, NODE_ID (`<base>-<index>`), private peer port
(PORT + 1 + index, on 127.0.0.1) and NODE_URL (that peer address) in its environment. Every
worker binds the public HOST:PORT with SO_REUSEPORT, so the kernel spreads new connections over
them, and its peer port alone, so other nodes can reach this one node.

The supervisor serves nothing itself. It creates the schema once (so N workers never race to
create it on a fresh database), starts the workers, forwards SIGTERM/SIGINT to them and waits
for them to finish, and restarts a worker that exits unexpectedly, after a backoff that doubles
while the worker keeps dying young. A worker that cannot stay up (MAX_QUICK_EXITS exits in a
row, each within STABLE_SECONDS of its start: a taken port, a wrong password) makes the
supervisor stop the others and exit 1, rather than loop for ever.

A worker asks the kernel for SIGTERM when its supervisor dies (PR_SET_PDEATHSIG), so a killed
supervisor leaves no workers holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sneakerd.cluster.busy_board import board_path, create_board
from sneakerd.config import Settings
from sneakerd.errors import SneakerdError

log = logging.getLogger(__name__)

SUPERVISOR_PID = "SNEAKERD_SUPERVISOR_PID"
"""The environment variable that tells a worker its supervisor's pid."""
STABLE_SECONDS = 30.0
"""A worker that ran this long before exiting has its backoff reset."""
MAX_QUICK_EXITS = 5
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STOP_TIMEOUT = 30.0
"""Seconds the workers get to shut down gracefully (serve's grace, then the actors' drain)."""
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker is told: who it is and where its peers reach it."""

    index: int
    node_id: str
    peer_port: int

    @property
    def node_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


def worker_specs(settings: Settings) -> list[WorkerSpec]:
    return [
        WorkerSpec(i, f"{settings.node_id}-{i}", settings.port + 1 + i)
        for i in range(settings.workers)
    ]


def worker_env(settings: Settings, spec: WorkerSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: the supervisor's, with everything the command line may have
    changed written out (flags win over the environment, and the worker sees no flags)."""
    env = dict(base)
    env.update(
        {
            "HOST": settings.host,
            "PORT": str(settings.port),
            "DATABASE_URL": settings.database_url,
            "WORKERS": str(settings.workers),
            "REDIS_PREFIX": settings.redis_prefix,
            "LEASE_TTL": str(settings.lease_ttl_ms),
            "NODE_ID": spec.node_id,
            "NODE_URL": spec.node_url,
            "SNEAKERD_WORKER_INDEX": str(spec.index),
            "SNEAKERD_PEER_PORT": str(spec.peer_port),
            SUPERVISOR_PID: str(os.getpid()),
        }
    )
    if settings.jwt_secret is not None:
        env["JWT_SECRET"] = settings.jwt_secret
    if settings.redis_url is not None:
        env["REDIS_URL"] = settings.redis_url
    return env


def backoff(quick_exits: int) -> float:
    """Seconds before a restart: BACKOFF_FIRST after a worker that had run stably, doubling with
    each exit in a row that came soon after its start."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2**quick_exits))


class Supervisor:
    """Keeps one process per `WorkerSpec` running until `stop()`.

    `start()` spawns the workers and one keeper task each; `stop()` signals them, waits (killing
    what outlives `stop_timeout`) and awaits the keepers. `gave_up` is set when a worker could
    not be kept up; `given_up` then names it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        argv: Sequence[str] = (sys.executable, "-m", "sneakerd", "serve"),
        environ: Mapping[str, str] | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._argv = list(argv)
        self._environ = dict(os.environ if environ is None else environ)
        self._stop_timeout = stop_timeout
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._signal = signal.SIGTERM
        self.gave_up = asyncio.Event()
        self.given_up: str | None = None

    def pids(self) -> dict[int, int]:
        """Each running worker's pid, by index."""
        return {i: p.pid for i, p in self._procs.items() if p.returncode is None}

    async def start(self) -> None:
        for spec in worker_specs(self._settings):
            self._keepers.append(asyncio.create_task(self._keep(spec), name=spec.node_id))

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self._signal = sig
        self._stopping.set()
        for proc in self._procs.values():
            _send(proc, sig)
        try:
            async with asyncio.timeout(self._stop_timeout):
                await asyncio.gather(*self._keepers)
        except TimeoutError:
            log.warning(
                "workers still running %.0f s after %s: killing them", self._stop_timeout, sig.name
            )
            for proc in self._procs.values():
                _send(proc, signal.SIGKILL)
            await asyncio.gather(*self._keepers)
        self._keepers.clear()

    async def _spawn(self, spec: WorkerSpec) -> asyncio.subprocess.Process:
        env = worker_env(self._settings, spec, self._environ)
        return await asyncio.create_subprocess_exec(*self._argv, env=env)

    async def _keep(self, spec: WorkerSpec) -> None:
        loop = asyncio.get_running_loop()
        quick_exits = 0
        while not self._stopping.is_set():
            started = loop.time()
            what = f"worker {spec.index} (node {spec.node_id})"
            try:
                proc = await self._spawn(spec)
            except OSError as exc:  # no such interpreter, no memory, too many processes
                code: int | str = f"none (it could not start: {exc})"
            else:
                self._procs[spec.index] = proc
                if self._stopping.is_set():  # stop() came while it was being spawned
                    _send(proc, self._signal)
                code = await proc.wait()
                what = f"worker {spec.index} (node {spec.node_id}, pid {proc.pid})"
            if self._stopping.is_set():
                return
            lived = loop.time() - started
            quick_exits = quick_exits + 1 if lived < STABLE_SECONDS else 0
            if quick_exits >= MAX_QUICK_EXITS:
                self.given_up = (
                    f"{what} exited {quick_exits} times in a row within {STABLE_SECONDS:.0f} s "
                    f"of starting (last exit status {code}): giving up"
                )
                log.error("%s", self.given_up)
                self.gave_up.set()
                return
            delay = backoff(quick_exits)
            log.warning(
                "%s exited unexpectedly with status %s after %.1f s: restarting it in %.1f s",
                what,
                code,
                lived,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()


def _send(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


async def supervise(settings: Settings) -> int:
    """Run `settings.workers` workers until SIGTERM or SIGINT (0), or until one cannot be kept
    up (1)."""
    from sneakerd.store import open_store

    store = await open_store(settings.database_url)
    try:
        await store.init_schema()
    finally:
        await store.close()

    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    supervisor = Supervisor(settings)
    try:
        create_board(board_path(os.getpid()), settings.workers)
    except OSError as exc:  # the workers then each look at their own writes only
        log.warning("no shared board of writes in flight for the workers (%s)", exc)
    print(
        f"sneakerd: supervising {settings.workers} workers on {settings.host}:{settings.port} "
        f"(pid {os.getpid()}, nodes {settings.node_id}-0..{settings.workers - 1})",
        flush=True,
    )
    try:
        await supervisor.start()
        waits = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(supervisor.gave_up.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
    finally:
        await supervisor.stop(received[0] if received else signal.SIGTERM)
        board_path(os.getpid()).unlink(missing_ok=True)  # the workers' board (busy_board.py)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("sneakerd: every worker has stopped", flush=True)
    return 1 if supervisor.given_up is not None else 0


def follow_supervisor(environ: Mapping[str, str] | None = None) -> None:
    """In a worker: have the kernel send SIGTERM when the supervisor dies (Linux), and exit at
    once if it already has (then this process was handed to another parent)."""
    env = os.environ if environ is None else environ
    raw = env.get(SUPERVISOR_PID, "")
    if not raw.isdigit():
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(raw):
        raise SneakerdError("the supervisor of this worker has exited")


def announce(settings: Settings) -> None:
    """The worker's first line: which worker and node this process is."""
    say(
        f"sneakerd worker {settings.worker_index}: node {settings.node_id} pid {os.getpid()} "
        f"peer {settings.node_url}"
    )


def say(line: str) -> None:
    """One line on standard output in ONE write: the workers share their supervisor's output,
    and `print` writes the text and its newline separately, so two workers' lines could
    interleave mid-line (a pipe keeps a write of up to 4 KiB whole)."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (line + "\n").encode())
