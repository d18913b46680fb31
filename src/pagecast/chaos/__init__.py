"""``pagecast chaos``: does pagecast heal, and does it leave nothing behind? Scenarios run
against a real ``pagecast serve`` and virtual TVs on loopback (one with Shaka, the player of
Cast receivers), doing to it what days on a small home server do: children killed and
hung, TVs stopped, unplugged and switched off, the service itself stopped, storms of
webhooks, a busy neighbour, a soak with random faults, and one render on three TVs of which
one is hurt. Each prints one row; the exit
status is 1 when any pass criterion fails. docs/reliability.md explains every scenario.

rig.py runs what is attacked, faults.py attacks, watch.py samples, gaps.py and report.py
conclude and print; scenarios.py holds the scenarios in order.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

from ..bench.context import describe
from ..bench.measure import table
from .report import HEADERS, Row, cells, explain
from .rig import TV_HOSTS, open_rig
from .scenarios import SCENARIOS, Options


def progress(text: str) -> None:
    print(f"  · {text}", file=sys.stderr, flush=True)


async def run(names: list[str], opts: Options, hosts: list[str], logs: Path | None = None) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pagecast-chaos-") as tmp:
        async with open_rig(Path(tmp), hosts, logs=logs) as rig:
            for name in names:
                rig.scenario = name
                t0 = time.monotonic()
                progress(f"{name}: starting")
                try:
                    row = await SCENARIOS[name](rig, opts)
                except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
                    row = Row(name)
                    row.fail(f"the scenario itself failed: {describe(exc)}")
                row.notes.append(f"took {time.monotonic() - t0:.0f} s")
                rows.append(row)
                print(table(HEADERS, [cells(row)]).splitlines()[-1], flush=True)
                for line in explain(row):
                    progress(line.strip())
    return rows


def main(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.only.split(",") if n.strip()] or [n for n in SCENARIOS if n != "soak" or args.minutes > 0]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"pagecast chaos: unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    hosts = [h.strip() for h in args.tv_hosts.split(",") if h.strip()]
    if len(hosts) != len(TV_HOSTS) or not all(h.startswith("127.") for h in hosts):
        print(f"pagecast chaos: --tv-hosts takes {len(TV_HOSTS)} loopback addresses (127.x.x.x), comma-separated", file=sys.stderr)
        return 2
    opts = Options(quick=args.quick, minutes=args.minutes, busy_seconds=args.busy_seconds, seed=args.seed, progress=progress)
    print(f"pagecast chaos: {', '.join(names)}{' (quick)' if args.quick else ''}; seed {args.seed}", flush=True)
    logs = Path(args.logs) if args.logs else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    rows = trio.run(run, names, opts, hosts, logs)
    print()
    print(table(HEADERS, [cells(r) for r in rows]))
    for r in rows:
        for line in explain(r):
            print(line)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.to_dict() for r in rows], indent=1))
    failed = [r.scenario for r in rows if not r.passed]
    print(f"\n{'FAILED: ' + ', '.join(failed) if failed else 'all scenarios passed'}")
    return 1 if failed else 0
