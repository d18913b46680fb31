"""Command line: ``pagecast serve``, ``demo``, ``bench``, ``chaos``, and the client commands
``start``, ``stop``, ``status``, ``devices``, ``screens`` (client.py) for a running service."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import trio

from .core.settings import ConfigError, Settings, flag_name, settings_markdown
from .core.timestamps import iso_ms


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": iso_ms(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("hypercorn.access", "trio-websocket", "pychromecast", "zeroconf", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "", False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Every setting is also a flag: ``--public-url`` for PAGECAST_PUBLIC_URL, etc."""
    for f in dataclasses.fields(Settings):
        parser.add_argument(flag_name(f.name), dest=f.name, default=None, metavar=f.name.upper(), help=f.metadata.get("help"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)}
    return Settings.from_env(os.environ, **overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["virtual-tv"]:  # its own flags, --help included
        from .virtual_tv import main as virtual_tv_main

        return virtual_tv_main(argv[1:], prog="pagecast virtual-tv")
    parser = argparse.ArgumentParser(prog="pagecast", description="Turn a web page into a live video stream for TVs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (control API on --port, default 8000)")
    add_setting_flags(serve)
    demo = sub.add_parser("demo", help="run the service and cast the built-in demo dashboard to a TV (a virtual one if none is configured); prints its screen URL")
    add_setting_flags(demo)
    demo.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    demo.add_argument("--device", default=None, help="cast to this device (name, uuid or address); default: PAGECAST_DEFAULT_DEVICE, else a virtual TV")
    demo.add_argument("--tv-host", default="127.0.0.2", help="loopback address of the demo's virtual TV (default 127.0.0.2)")
    demo.add_argument("--tv-player", default="ffmpeg", choices=("ffmpeg", "shaka"), help="the virtual TV's player: light FFmpeg or Shaka in headless Chromium")
    docs = sub.add_parser("settings", help="print every setting as docs/configuration.md's table (markdown)")
    docs.add_argument("--update", metavar="FILE", default="", help="rewrite the generated table in this markdown file instead (docs/configuration.md)")
    sub.add_parser("virtual-tv", help="run a virtual Cast TV (CASTV2 over TLS) that plays what is cast to it; see its --help")
    bench = sub.add_parser(
        "bench", help="measure CPU, startup, latency, memory, casting and encoders; prints figures", formatter_class=ShowDefaults,
        description="Measure pagecast against its targets: CPU per stream, startup, glass-to-glass latency, memory, one Chromium per "
        "session or shared, casting to a virtual TV, and each encoder that works here, each next to a reference pipeline measured "
        "in the same run (docs/benchmark.md), what an unchanging page costs, one render on several TVs, and how many dashboards "
        "a box carries. Takes minutes; ha, fanout and scale install and run a real Home Assistant.",
    )
    bench.add_argument("--seconds", type=float, default=20.0, help="measuring window per case")
    bench.add_argument("--only", default="", help="comma-separated sections: cpu,idle,ha,fanout,scale,startup,latency,contexts,cast,encoders (default: every one)")
    bench.add_argument("--json", dest="json_out", default="", help="also write the figures to this JSON file")
    chaos = sub.add_parser(
        "chaos", help="attack a real pagecast serve and virtual TVs with faults; prints a table, exits 1 if a criterion fails", formatter_class=ShowDefaults,
        description="Do faults to a real pagecast serve and three virtual TVs on loopback — killed and hung children, TVs that stop, "
        "vanish or restart, a lost network, shutdowns, request storms, a busy neighbour, a soak, one render on three TVs of which one is hurt — "
        "and check that everything heals "
        "and nothing is left behind (docs/reliability.md). Prints a table; exits 1 if a criterion fails.",
    )
    chaos.add_argument("--only", default="", help="comma-separated scenarios: cycles,kill,hang,device,network,shutdown,storm,busy,soak,screens (default: every one)")
    chaos.add_argument("--minutes", type=float, default=3.0, help="length of the soak (0 leaves it out)")
    chaos.add_argument("--busy-seconds", type=float, default=300.0, help="how long the busy neighbour runs")
    chaos.add_argument("--quick", action="store_true", help="each scenario small, as CI runs it")
    chaos.add_argument("--seed", type=int, default=None, help="seed for the random faults and their timing, to repeat a run (default: none, so each run differs)")
    chaos.add_argument("--tv-hosts", default="127.0.0.31,127.0.0.32,127.0.0.33", help="the three virtual TVs' loopback addresses (Shaka, FFmpeg, FFmpeg)")
    chaos.add_argument("--json", dest="json_out", default="", help="also write the rows to this JSON file")
    chaos.add_argument("--logs", default="", help="keep each pagecast serve's log in this directory (NN-scenario.log)")
    from . import client

    client.add_commands(sub)
    args = parser.parse_args(argv)

    if args.command in client.COMMANDS:
        return client.main(args)

    if args.command == "chaos":
        from .chaos import main as chaos_main

        return chaos_main(args)

    if args.command == "settings":
        return _settings_table(args.update)

    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(args)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"pagecast: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    from .lowlevel.allocator import fix_mmap_threshold
    from .server.service import Service

    fix_mmap_threshold()  # runs for days: keep big buffers from fragmenting the heap

    service = Service(settings)
    if args.command == "serve":
        trio.run(service.run)
        return 0
    trio.run(_demo, service, args)
    return 0


async def _demo(service, args: argparse.Namespace) -> None:
    """The service, the demo dashboard, and a TV to cast it to: the configured one, or a
    virtual TV on a loopback address whose screen a browser can show."""
    device = args.device if args.device is not None else service.settings.default_device
    async with trio.open_nursery() as nursery:
        tv = None
        if not device:
            from .virtual_tv import open_virtual_tv

            tv = await nursery.start(_run_virtual_tv, open_virtual_tv, args.tv_host, args.tv_player)
            device = tv.host
        await nursery.start(service.run)
        await _demo_cast(service, device, tv, args.seconds)
        nursery.cancel_scope.cancel()


async def _run_virtual_tv(open_virtual_tv, host: str, player: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with open_virtual_tv(host=host, name="pagecast demo TV", player=player) as tv:
        task_status.started(tv)
        await trio.sleep_forever()


async def _demo_cast(service, device: str, tv, seconds: float | None) -> None:
    from .core.errors import Refused
    from .core.request import parse_start

    local = f"http://127.0.0.1:{service.port}"
    req = parse_start({"url": f"{local}/demo/dashboard", "device": device, "keep_on": True}, service.settings, {})
    try:
        session = (await service.supervisor.start(req)).session
    except Refused as exc:
        print(f"\npagecast demo: cannot cast to {device}: {exc}\n", file=sys.stderr, flush=True)
        service.shutdown()
        return
    with trio.move_on_after(60):
        await session.wait_ready()
    if not session.active:
        print(f"\npagecast demo: the demo stream failed: {session.error or session.stop_reason}\n", file=sys.stderr, flush=True)
        service.shutdown()
        return
    screen = f"  The TV's screen:        {tv.screen_url}\n" if tv is not None else ""
    print(
        f"\n  pagecast demo is casting to {session.target.name} ({session.target.host}).\n"
        f"{screen}"
        f"  Watch the stream:       {service.url}/watch/{session.id}\n"
        f"  Stream URL:             {session.stream_url}\n"
        f"  Status:                 {service.url}/status   Devices: {service.url}/devices\n"
        f"  Stop with Ctrl-C.\n",
        flush=True,
    )
    if seconds is not None:
        await trio.sleep(seconds)
    else:
        await service.stopped.wait()
    service.shutdown()
    await service.stopped.wait()


if __name__ == "__main__":
    sys.exit(main())


def _settings_table(update: str) -> int:
    """The settings table, printed or written between a markdown file's settings-table markers."""
    if not update:
        print(settings_markdown(), end="")
        return 0
    path = Path(update)
    text = path.read_text()
    begin = text.index("-->", text.index("settings-table:begin")) + 4
    end = text.index("<!-- settings-table:end")
    path.write_text(text[:begin] + settings_markdown() + text[end:])
    return 0
