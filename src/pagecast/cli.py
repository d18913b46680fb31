"""Command line: ``pagecast serve``, ``pagecast demo``, ``pagecast bench``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time

import trio

from .settings import ConfigError, Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
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
    for noisy in ("hypercorn.access", "trio-websocket", "pychromecast", "zeroconf"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Every setting is also a flag: ``--public-url`` for PAGECAST_PUBLIC_URL, etc."""
    for f in dataclasses.fields(Settings):
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar=f.name.upper(), help=f.metadata.get("help"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)}
    return Settings.from_env(**overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pagecast", description="Turn a web page into a live video stream for TVs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (control API on --port, default 8000)")
    add_setting_flags(serve)
    demo = sub.add_parser("demo", help="run the service and stream the built-in demo dashboard; prints the watch URL")
    add_setting_flags(demo)
    demo.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    bench = sub.add_parser("bench", help="measure CPU, startup, latency and memory; prints figures")
    bench.add_argument("--seconds", type=float, default=20.0, help="measuring window per case")
    bench.add_argument("--only", default="", help="comma-separated sections: cpu,startup,latency,scale,contexts")
    bench.add_argument("--json", dest="json_out", default="", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(args)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"pagecast: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    from .service import Service

    service = Service(settings)
    if args.command == "serve":
        trio.run(service.run)
        return 0
    trio.run(_demo, service, args.seconds)
    return 0


async def _demo(service, seconds: float | None) -> None:
    from .validate import parse_start

    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        local = f"http://127.0.0.1:{service.port}"
        req = parse_start({"url": f"{local}/demo/dashboard"}, service.settings, {})
        session = await service.supervisor.start(req)
        with trio.move_on_after(60):
            await session.settled.wait()
        if session.state == "failed":
            print(f"\npagecast demo: the demo stream failed: {session.error}\n", file=sys.stderr, flush=True)
            service.shutdown()
            return
        print(
            f"\n  pagecast demo is live.\n"
            f"  Watch it in a browser:  {service.url}/watch/{session.id}\n"
            f"  Stream URL:             {service.url}/streams/{session.id}/index.m3u8\n"
            f"  Status:                 {service.url}/status\n"
            f"  Stop with Ctrl-C.\n",
            flush=True,
        )
        if seconds is not None:
            await trio.sleep(seconds)
            service.shutdown()


if __name__ == "__main__":
    sys.exit(main())
