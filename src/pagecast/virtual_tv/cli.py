"""``python -m pagecast.virtual_tv``: one virtual TV until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import uuid

import trio

from .net import BindError
from .players import PLAYERS

log = logging.getLogger("pagecast.virtual_tv")


def build_parser(prog: str = "python -m pagecast.virtual_tv") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a virtual Google Cast TV on a loopback address.")
    parser.add_argument("--host", default="127.0.0.2", help="address to listen on, ports 8009/8008/8443 (default 127.0.0.2)")
    parser.add_argument("--name", default="Virtual TV", help="the friendly name senders show")
    parser.add_argument("--player", choices=PLAYERS, default="ffmpeg", help="ffmpeg (light) or shaka (Shaka Player in headless Chromium)")
    parser.add_argument("--mdns", action="store_true", help="also announce _googlecast._tcp.local. over mDNS")
    parser.add_argument("--uuid", type=uuid.UUID, default=None, help="device UUID (default: a new random one)")
    parser.add_argument("--ffmpeg", default=None, help="FFmpeg binary (default: PAGECAST_FFMPEG or ffmpeg on PATH)")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m pagecast.virtual_tv") -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean stop, 1 if the device could not start."""
    args = build_parser(prog).parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("pychromecast", "zeroconf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        trio.run(_serve, args)
    except BindError as exc:
        print(f"virtual TV: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(args: argparse.Namespace) -> None:
    from .device import open_virtual_tv

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_virtual_tv(args.host, args.name, player=args.player, mdns=args.mdns, uuid=args.uuid, ffmpeg=args.ffmpeg) as tv:
            print(f"virtual TV {tv.name!r} ({tv.uuid}) at {tv.host}:8009; screen: {tv.screen_url}", flush=True)
            async for signum in signals:
                log.info("received %s; stopping", signal.Signals(signum).name)
                return
