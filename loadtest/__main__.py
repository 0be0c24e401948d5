"""`python -m loadtest SCENARIO [options]`: bounded load runs against real servers on loopback.

Every scenario also takes `--report FILE.html` (one self-contained page: charts of throughput
and latency per second by outcome, the gauges, the checks) and `--json FILE` (the same data;
`--json` alone, or `--json -`, writes it to stdout, and the text report then goes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import orjson

from loadtest import (
    clusterwatchers,
    compare,
    failover,
    hotdrop,
    htmlreport,
    multidrop,
    probes,
    queue,
    raffle,
    record,
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
    "raffle": raffle,
    "queue": queue,
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
        add_output_arguments(p)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=20.0,
        metavar="S",
        help="first wait up to S seconds for the machine to be idle (default 20; 0 = no)",
    )
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    run: Callable[[argparse.Namespace], Awaitable[int]] = SCENARIOS[args.scenario].run
    recorder = record.start(args.scenario, words)
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
        record.restart_clock()
        return await run(args)

    # With the JSON on stdout, the text report goes to stderr, so stdout parses as JSON.
    text_out = sys.stderr if args.json == "-" else sys.stdout
    try:
        with contextlib.redirect_stdout(text_out):
            code = uvloop.run(main_async())
    except asyncio.CancelledError:
        print("loadtest: interrupted; servers stopped, databases dropped", file=sys.stderr)
        return 130
    write_outputs(args, recorder)
    return code


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write the run as one self-contained HTML page (charts, checks)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="also write the run's data as JSON to FILE; without FILE (or with -) to stdout, "
        "and the text report to stderr",
    )


def write_outputs(args: argparse.Namespace, recorder: record.Recorder) -> None:
    if args.report is not None:
        args.report.write_text(htmlreport.render(recorder), encoding="utf-8")
        print(f"loadtest: report written to {args.report}", file=sys.stderr)
    if args.json is not None:
        data = orjson.dumps(recorder.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
        if args.json == "-":
            sys.stdout.write(data)
        else:
            Path(args.json).write_text(data, encoding="utf-8")
            print(f"loadtest: JSON written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
