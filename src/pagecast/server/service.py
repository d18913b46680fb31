"""The root of the supervision tree: HTTP server, signal watcher, device directory and stream
supervisor.

Shutdown order follows nesting: a signal stops every session (their children are stopped
politely, then firmly, within bounds), then the HTTP server, all under one deadline.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from .. import __version__
from ..core.address import pick_address, reachability
from ..core.settings import Settings
from ..session.chromium import runtime_base
from ..session.encoder_probe import EncoderChoice
from ..session.supervisor import Supervisor
from .announce import addresses_for, announce
from .api import create_app
from .devices import Directory
from .identity import default_state_dir, instance_id
from .profiles import Profiles

log = logging.getLogger(__name__)


def interfaces() -> list[tuple[str, str]]:
    """(name, IPv4 address) of every interface that is up, in the system's order."""
    stats = psutil.net_if_stats()
    return [
        (name, addr.address)
        for name, addrs in psutil.net_if_addrs().items() if stats.get(name) and stats[name].isup
        for addr in addrs if addr.family == socket.AF_INET
    ]


def lan_address() -> str:
    """The address TVs most likely reach (``core.address.pick_address``); no packet is sent."""
    return pick_address(interfaces())


def base_url_for(settings: Settings, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = lan_address()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def prepare_runtime_dir(settings: Settings) -> Settings:
    """A private runtime dir per service process; leftovers of dead processes are removed."""
    base = runtime_base(settings)
    base.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        if entry.name.isdigit() and not psutil.pid_exists(int(entry.name)):
            log.info("removing stale runtime dir %s", entry)
            shutil.rmtree(entry, ignore_errors=True)
    mine = base / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return replace(settings, runtime_dir=str(mine))


class Service:
    """Runs until cancelled or signalled; ``url`` is known once started."""

    def __init__(self, settings: Settings, *, encoders: EncoderChoice | None = None):
        """``encoders``: the encoder choice to use instead of probing (tests)."""
        self.settings = prepare_runtime_dir(settings)
        self.profiles = Profiles(settings.profiles_file)
        self.instance_id = instance_id(Path(settings.state_dir) if settings.state_dir else default_state_dir())
        self.directory = Directory(self.settings)
        self.encoders = encoders if encoders is not None else EncoderChoice.from_settings(self.settings)
        self.supervisor = Supervisor(self.settings, self.directory, lambda: self.url or "", self.encoders)
        self.url: str | None = None
        self.port: int | None = None
        self._shutdown = trio.Event()
        self.stopped = trio.Event()

    def shutdown(self) -> None:
        self._shutdown.set()

    async def run(self, *, handle_signals: bool = True, task_status=trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        try:
            async with trio.open_nursery() as root:
                await root.start(self.directory.run)
                await root.start(self.supervisor.run)
                await root.start(self.profiles.run)
                app = create_app(self.supervisor, settings, lambda: self.url or "", self.instance_id, self.profiles)
                config = HypercornConfig()
                config.bind = [f"{_bind_host(settings.host)}:{settings.port}"]
                config.accesslog = None
                config.errorlog = logging.getLogger("hypercorn.error")
                config.graceful_timeout = 1.0
                config.keep_alive_timeout = 30
                http_done = trio.Event()

                async def http(task_status=trio.TASK_STATUS_IGNORED) -> None:
                    try:
                        await hypercorn_serve(app, config, shutdown_trigger=self._shutdown.wait, task_status=task_status)
                    finally:
                        http_done.set()

                # Started once the socket is bound; with port 0 the bind names the real port.
                binds = await root.start(http)
                self.port = int(binds[0].rsplit(":", 1)[1])
                # The encoder probe (a test encode per backend, a few seconds at most) runs
                # once the server answers, beside everything else; sessions that start
                # meanwhile wait for its answer.
                root.start_soon(self.encoders.run, name="encoder probe")
                self.url = base_url_for(settings, self.port)
                if handle_signals:
                    root.start_soon(self._watch_signals)
                if settings.announce:
                    root.start_soon(self._announce, name="mDNS announcement")
                log.info("pagecast listening on %s", self.url)
                told, warning = reachability(self.url, interfaces())
                log.info("%s", told)
                if warning:
                    log.warning("%s", warning)
                task_status.started()
                await self._shutdown.wait()
                log.info("shutting down: stopping %d session(s)", len(self.supervisor.active()))
                with trio.move_on_after(settings.shutdown_timeout) as scope:
                    await self.supervisor.shutdown()
                    await http_done.wait()
                if scope.cancelled_caught:
                    log.warning("graceful shutdown took longer than %.0f s; cancelling", settings.shutdown_timeout)
                root.cancel_scope.cancel()
        finally:
            shutil.rmtree(settings.runtime_dir, ignore_errors=True)
            self.stopped.set()
        log.info("pagecast stopped")

    async def _announce(self) -> None:
        """Announced until the service stops; a LAN without multicast only loses discovery."""
        from zeroconf import Error as ZeroconfError

        public_host = urlsplit(self.url or "").hostname
        addresses = addresses_for(self.settings.host, public_host)
        try:
            async with announce(self.instance_id, __version__, self.port or 0, addresses, self.settings.host):
                await trio.sleep_forever()
        except (OSError, ZeroconfError) as exc:
            log.warning("could not announce this service by mDNS (%s); Home Assistant will not discover it: add it by its URL, or set PAGECAST_ANNOUNCE=false", exc)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                self.shutdown()


def _bind_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
