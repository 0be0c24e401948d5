"""`python -m loadtest SCENARIO [options]`: bounded load runs against real servers on loopback."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from types import ModuleType

from loadtest import (
    clusterwatchers,
    compare,
    failover,
    hotdrop,
    multidrop,
    probes,
    sellout,
    soak,
    sustained,
    watchers,
    webhooksload,
    workersload,
)

SCENARIOS: dict[str, ModuleType] = {
    "watchers": watchers,
    "hotdrop": hotdrop,
    "compare": compare,
    "sellout": sellout,
    "multidrop": multidrop,
    "soak": soak,
    "sustained": sustained,
    "workers": workersload,
    "failover": failover,
    "cluster-watchers": clusterwatchers,
    "webhooks": webhooksload,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for name, module in SCENARIOS.items():
        doc = (module.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(
            name,
            help=doc,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=20.0,
        metavar="S",
        help="first wait up to S seconds for the machine to be idle (default 20; 0 = no)",
    )
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Awaitable[int]] = SCENARIOS[args.scenario].run
    import uvloop

    async def main_async() -> int:
        # SIGTERM/SIGINT cancel the run, so every `finally` stops its servers and drops its
        # databases instead of leaving them behind.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        if args.wait_quiet > 0:
            busy = await probes.wait_quiet(args.wait_quiet)
            print(f"background load before the run: {busy:.2f} cores busy", file=sys.stderr)
        return await run(args)

    try:
        return uvloop.run(main_async())
    except asyncio.CancelledError:
        print("loadtest: interrupted; servers stopped, databases dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
