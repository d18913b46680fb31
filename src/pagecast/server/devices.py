"""Which Cast devices exist: mDNS discovery plus static hosts, and turning a `device` string
into one of them.

mDNS uses pychromecast's browser on zeroconf (its threads live exactly as long as the
directory). Static hosts are polled here, on Trio, by asking each for ``/setup/eureka_info``
as pychromecast does (HTTPS on 8443, then HTTP on 8008): a device answering there is a Cast
device, and its answer names it.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import replace
from typing import Any
from uuid import UUID

import httpx
import trio

from ..core.device import CAST_PORT, Device, looks_like_address, names, parse_eureka
from ..core.errors import Conflict, NotFound
from ..core.settings import Settings

log = logging.getLogger(__name__)

EUREKA_PATH = "/setup/eureka_info?params=device_info,name"
PROBE_TIMEOUT = 3.0
POLL_INTERVAL = 30.0


async def probe_host(host: str, source: str = "static", timeout: float = PROBE_TIMEOUT) -> Device:
    """Ask ``host`` who it is. Raises OSError-like ``ConnectionError`` with the reason."""
    errors = []
    async with httpx.AsyncClient(verify=False, timeout=timeout) as client:
        for base in (f"https://{_url_host(host)}:8443", f"http://{_url_host(host)}:8008"):
            try:
                response = await client.get(base + EUREKA_PATH)
                response.raise_for_status()
                return parse_eureka(host, response.json(), source, time.time())
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                errors.append(f"{base}: {_reason(exc)}")
    raise ConnectionError("; ".join(errors))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer (timed out)"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return "connection refused"
    return text


class Directory:
    """Known Cast devices by uuid; lives in the service's root nursery."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.devices: dict[str, Device] = {}
        self.unreachable: dict[str, str] = {}  # static host -> last error
        self._polled = trio.Event()

    def list(self) -> list[Device]:
        return sorted(self.devices.values(), key=lambda d: (d.name.lower(), d.uuid))

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self.settings.cast_hosts:
                nursery.start_soon(self._poll_static)
            else:
                self._polled.set()
            if self.settings.mdns:
                nursery.start_soon(self._browse_mdns)
            task_status.started()

    async def _poll_static(self) -> None:
        while True:
            await self.refresh_static()
            await trio.sleep(POLL_INTERVAL)

    async def refresh_static(self) -> None:
        async def one(host: str) -> None:
            try:
                self._add(await probe_host(host))
                self.unreachable.pop(host, None)
            except ConnectionError as exc:
                if self.unreachable.get(host) != str(exc):
                    log.warning("static Cast host %s does not answer: %s", host, exc)
                self.unreachable[host] = str(exc)

        async with trio.open_nursery() as nursery:
            for host in self.settings.cast_hosts:
                nursery.start_soon(one, host)
        self._polled.set()

    def _add(self, device: Device) -> None:
        old = self.devices.get(device.uuid)
        if old is None or (old.host, old.name) != (device.host, device.name):
            log.info("Cast device %r (%s) at %s via %s", device.name, device.model, device.host, device.source)
        if old is not None and old.source == "mdns" and device.source != "mdns":
            device = replace(device, source="mdns")
        self.devices[device.uuid] = device

    def _forget_mdns(self, uuid: str) -> None:
        device = self.devices.get(uuid)
        if device is not None and device.source == "mdns":
            log.info("Cast device %r left mDNS", device.name)
            del self.devices[uuid]

    async def _browse_mdns(self) -> None:
        """pychromecast's CastBrowser on its own zeroconf; its callbacks arrive on zeroconf's thread
        and are handed to Trio without blocking it."""
        import pychromecast
        import zeroconf

        token = trio.lowlevel.current_trio_token()

        def seen(uuid: UUID, _service: str) -> None:
            info = browser.devices.get(uuid) if browser is not None else None
            if info is None or not info.host:
                return
            device = Device(
                name=info.friendly_name or str(uuid), uuid=str(uuid), model=info.model_name or "unknown model",
                manufacturer=info.manufacturer or "unknown manufacturer", host=info.host, port=info.port,
                source="mdns", display=info.cast_type != "audio", last_seen=time.time(),
            )
            try:
                token.run_sync_soon(self._add, device)
            except trio.RunFinishedError:
                pass

        def gone(uuid: UUID, _service: str, _info) -> None:
            try:
                token.run_sync_soon(self._forget_mdns, str(uuid))
            except trio.RunFinishedError:
                pass

        def start():
            nonlocal browser
            zc = zeroconf.Zeroconf()
            try:
                browser = pychromecast.discovery.CastBrowser(pychromecast.discovery.SimpleCastListener(seen, gone, seen), zc)
                browser.start_discovery()  # callbacks may come before this returns: ``browser`` is set
            except BaseException:
                zc.close()
                raise
            return browser

        browser = None
        try:
            browser = await trio.to_thread.run_sync(start)
        except OSError as exc:
            log.warning("mDNS discovery unavailable (%s); use PAGECAST_CAST_HOSTS", exc)
            return
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(browser.stop_discovery)

    async def resolve(self, spec: str) -> Device:
        """A friendly name (any case), a uuid (with or without dashes) or an address."""
        with trio.move_on_after(PROBE_TIMEOUT):
            await self._polled.wait()
        device = self._match(spec)
        if device is not None:
            return device
        if looks_like_address(spec):
            host = spec
            try:
                host = (await trio.socket.getaddrinfo(spec, CAST_PORT, type=socket.SOCK_STREAM))[0][4][0]
            except (OSError, UnicodeError) as exc:
                raise NotFound(f"device {spec!r}: cannot resolve that host name ({getattr(exc, 'strerror', None) or exc})") from None
            try:
                device = await probe_host(host, source="address")
            except ConnectionError as exc:
                raise Conflict(f"no Cast device answers at {spec}: {exc}") from None
            self._add(device)
            return device
        if self.settings.cast_hosts:
            await self.refresh_static()
            device = self._match(spec)
            if device is not None:
                return device
        raise self.unknown(spec)

    def knows(self, spec: str) -> bool:
        """Whether ``spec`` names a device found so far (asking no device; two of one name count)."""
        try:
            return self._match(spec) is not None
        except Conflict:
            return True

    def unknown(self, spec: str) -> NotFound:
        """The error for a ``device`` that names nothing known: the known ones, and where to look."""
        known = ", ".join(f"{d.name!r} ({d.host})" for d in self.list()) or "none found yet"
        hints = []
        if not self.settings.mdns:
            hints.append("mDNS discovery is off (PAGECAST_MDNS)")
        if self.unreachable:
            hints.append("not answering: " + ", ".join(self.unreachable))
        hint = f" ({'; '.join(hints)})" if hints else ""
        return NotFound(
            f"no Cast device {spec!r}; known devices: {known}{hint}. Give a name, uuid or address from GET /devices, "
            "or add the TV's address to PAGECAST_CAST_HOSTS",
        )

    def _match(self, spec: str) -> Device | None:
        """The one device ``spec`` names (``core.device.names``: the rule /start, /stop and a
        screen's path use too); two devices of that name are a Conflict."""
        named = [d for d in self.devices.values() if names(d, spec)]
        if len(named) > 1:
            raise Conflict(
                f"{len(named)} devices are named {spec.strip()!r} ({', '.join(d.host for d in named)}); give a uuid or address instead",
            )
        return named[0] if named else None
