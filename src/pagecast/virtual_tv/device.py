"""The virtual Cast device: one TV on its own loopback address, speaking CASTV2 on 8009 and
HTTP on 8008/8443, running the Default Media Receiver and really playing what it is sent.

Everything it does runs in one nursery it owns (connections, HTTP, players, mDNS). State
changes are synchronous and decided here; messages leave through each connection's queue.
Where each behaviour comes from: ``docs/virtual-tv.md``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio

from ..lowlevel.groups import flatten, reraise_alone
from .castv2 import (
    BROADCAST_ID,
    NS_CONNECTION,
    NS_DEVICE_AUTH,
    NS_HEARTBEAT,
    NS_MEDIA,
    NS_RECEIVER,
    PLATFORM_ID,
    Message,
    auth_error,
    is_transport_namespace,
)
from .http import DeviceSite, serve_http
from .links import CastServer, SenderLink
from .media import MediaChannel
from .net import Network, open_listener
from .players import PLAYERS, FfmpegPlayback, Playback, ShakaPlayback
from .status import (
    APP_BACKDROP,
    KNOWN_APPS,
    App,
    AppSpec,
    MediaSession,
    Volume,
    negotiated_version,
    receiver_status,
)

log = logging.getLogger(__name__)

MODEL_NAME = "pagecast virtual TV"
MANUFACTURER = "pagecast"
CAST_PORT = 8009
HTTP_PORT = 8008
HTTPS_PORT = 8443
RECEIVED_KEEP = 5000
VOLUME_CHANGES_KEEP = 50


class VirtualTV:
    """A Cast device a sender finds by host (``host:8009``), like a real TV.

    Fault methods (``remote_stop``, ``drop_network``, …) are synchronous and take effect at
    once; every state change wakes :meth:`wait_for`.
    """

    def __init__(
        self,
        host: str = "127.0.0.2",
        name: str = "Virtual TV",
        *,
        player: str = "ffmpeg",
        mdns: bool = False,
        uuid: uuidlib.UUID | None = None,
        ffmpeg: str | None = None,
        chromium: str | None = None,
        apps: dict[str, str] | None = None,
    ):
        if player not in PLAYERS:
            raise ValueError(f"player must be one of {', '.join(PLAYERS)}, not {player!r}")
        self.host = host
        self.name = name
        self.uuid = uuid or uuidlib.uuid4()
        self.player = player
        self.mdns = mdns
        if ffmpeg is None and player == "ffmpeg":
            from ..lowlevel.binaries import find_binary

            ffmpeg = find_binary("ffmpeg")
        self._ffmpeg = ffmpeg or "ffmpeg"
        self._chromium = chromium
        self._apps = dict(KNOWN_APPS)
        for app_id, app_name in (apps or {}).items():
            self._apps.setdefault(app_id, AppSpec(app_id, app_name, status_text=app_name))
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.network = Network()
        self._app: App = App(self._apps[APP_BACKDROP])
        self._media: MediaChannel | None = None
        self._volume = Volume()
        #: Every SET_VOLUME as it left the volume, with the app shown then; and the launch
        #: sounds a Nest Hub would make (an app launched while the TV is not muted).
        self.volume_changes: list[dict[str, Any]] = []
        self.chimes = 0
        self._standby = False
        self._refuse: str | None = None
        self._changed = trio.Event()
        self._server: CastServer | None = None
        self._nursery: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"<VirtualTV {self.name!r} {self.host} app={self.app_id} {self.player_state}>"

    # ------------------------------------------------------------------ what it shows

    @property
    def screen_url(self) -> str:
        return f"http://{self.host}:{HTTP_PORT}/"

    @property
    def app_id(self) -> str:
        return self._app.spec.app_id

    @property
    def player_state(self) -> str:
        session = self._media.session if self._media else None
        return session.player_state if session else "IDLE"

    @property
    def media(self) -> dict[str, Any] | None:
        """The media loaded in the running app (kept after it ended, until the next LOAD)."""
        session = self._media.session if self._media else None
        return session.media if session else None

    @property
    def volume_level(self) -> float:
        return self._volume.level

    def eureka_info(self) -> dict[str, Any]:
        udn = str(self.uuid)
        return {
            "name": self.name,
            "ssdp_udn": udn,
            "version": 12,
            "build_version": "pagecast-virtual-tv",
            "device_info": {
                "name": self.name,
                "model_name": MODEL_NAME,
                "manufacturer": MANUFACTURER,
                "product_name": "pagecast_virtual_tv",
                "ssdp_udn": udn,
                "cloud_device_id": self.uuid.hex.upper(),
                "capabilities": {
                    "display_supported": True,
                    "multizone_supported": False,
                    "audio_hdr_supported": False,
                    "cloud_groups_supported": False,
                },
            },
        }

    def state(self) -> dict[str, Any]:
        """Receiver and media status, player figures, faults: what tests and the screen read."""
        session = self._media.session if self._media else None
        return {
            "name": self.name,
            "uuid": str(self.uuid),
            "host": self.host,
            "model_name": MODEL_NAME,
            "player": self.player,
            "screen_url": self.screen_url,
            "receiver": receiver_status(self._app, self._volume, standby=self._standby),
            "app_id": self.app_id,
            "app_name": self._app.spec.name,
            "session_id": self._app.session_id,
            "idle_screen": self._app.spec.idle_screen,
            "standby": self._standby,
            "volume": self._volume.entry(),
            "volume_changes": list(self.volume_changes),
            "chimes": self.chimes,
            "media": session.media if session else None,
            "media_status": session.entry() if session else None,
            "player_state": self.player_state,
            "idle_reason": session.idle_reason if session else None,
            "current_time": session.current_time if session else 0.0,
            "stats": (session or MediaSession(0, {}, 0)).stats(),
            "loads": self._media.loads if self._media else 0,
            "network": {"mode": self.network.mode, "delay_s": self.network.delay, "refuse_load": self._refuse},
            "connections": [{"peer": link.peer, "virtual": sorted(f"{src}->{dst}" for src, dst in link.virtual)} for link in self._links()],
        }

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The first state for which ``predicate`` is true; :class:`TimeoutError` if none comes
        within ``timeout`` seconds (its message carries the last state)."""
        with trio.move_on_after(timeout):
            while True:
                current = self.state()
                if predicate(current):
                    return current
                await self._changed.wait()
        raise TimeoutError(f"{self.name}: condition not met within {timeout} s; last state: {json.dumps(self.state())}")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. Raises :class:`~pagecast.virtual_tv.BindError` if the address
        or one of its ports is not available."""
        from .mdns import announce
        from .tls import make_server_context

        if self._nursery is not None:
            raise RuntimeError(f"{self!r} is already running")
        self._app, self._media, self._standby = App(self._apps[APP_BACKDROP]), None, False
        workdir = Path(tempfile.mkdtemp(prefix="pagecast-tv-"))
        try:
            ssl_context = await make_server_context(workdir, str(self.uuid))
            listeners: list[trio.SocketListener] = []
            try:
                for port in (CAST_PORT, HTTP_PORT, HTTPS_PORT):
                    listeners.append(await open_listener(self.host, port))
            except BaseException:
                for listener in listeners:
                    listener.socket.close()
                raise
            cast, http, https = listeners
            self._server = CastServer(self.host, CAST_PORT, ssl_context, self.network, self._on_message, on_link_closed=lambda link: self._notify())
            site = DeviceSite(self)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._server.serve, cast)
                nursery.start_soon(serve_http, http, site)
                nursery.start_soon(serve_http, https, site, ssl_context)
                async with announce(self.host, self.uuid, self.name, MODEL_NAME) if self.mdns else nullcontext():
                    log.info("virtual TV %r (%s) on %s: screen %s", self.name, self.uuid, self.host, self.screen_url)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._nursery = None
            self._server = None
            shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------ faults

    def remote_stop(self) -> None:
        """The remote's stop button: the media ends (IDLE, CANCELLED), the app stays."""
        if self._media is not None:
            self._media.end("CANCELLED")

    def remote_quit(self) -> None:
        """The app is closed from elsewhere: back to the idle screen, its senders get CLOSE."""
        if not self._app.spec.idle_screen:
            old = self._switch_app(self._apps[APP_BACKDROP], media_reason=None)
            self._broadcast_receiver()
            self._close_app(old)
            self._notify()

    def launch_app(self, app_id: str, name: str | None = None) -> None:
        """Another app takes over (someone casts YouTube): our media is INTERRUPTED."""
        if not app_id:
            raise ValueError("launch_app needs an app id")
        spec = self._apps.get(app_id) or AppSpec(app_id, name or app_id, status_text=name or app_id)
        if name and spec.name != name:
            spec = AppSpec(spec.app_id, name, spec.namespaces, spec.idle_screen, name)
        self._standby = False
        old = self._switch_app(spec, media_reason="INTERRUPTED")
        self._broadcast_receiver()
        self._close_app(old)
        self._notify()

    def standby(self, on: bool = True) -> None:
        """The TV is switched off (or to another input); the app may keep running."""
        self._standby = bool(on)
        self._broadcast_receiver()
        self._notify()

    def drop_network(self, mode: str = "silent") -> None:
        """``silent``: freeze every connection (and never complete new ones); ``reset``: abort
        every connection with a TCP RST and refuse new ones."""
        if mode not in ("silent", "reset"):
            raise ValueError(f"drop_network mode must be 'silent' or 'reset', not {mode!r}")
        server = self._require_server()
        if self.network.mode == "reset":
            server.resume()
        self.network.set_mode(mode)
        if mode == "reset":
            server.refuse()
        self._notify()

    def restore_network(self) -> None:
        was = self.network.mode
        self.network.set_mode("ok")
        if was == "reset":
            self._require_server().resume()
        self._notify()

    def slow_network(self, delay_s: float) -> None:
        """Hold back every outgoing CASTV2 message by ``delay_s`` (0 to stop)."""
        if delay_s < 0:
            raise ValueError("slow_network delay must be >= 0")
        self.network.delay = float(delay_s)
        self._notify()

    def refuse_load(self, reason: str | None = "LOAD_FAILED") -> None:
        """Every LOAD from now on fails with LOAD_FAILED carrying ``reason``; None accepts again."""
        self._refuse = reason
        self._notify()

    async def restart(self, downtime: float = 0.0) -> None:
        """Reboot: every connection drops, app and media are lost, the idle screen comes back
        (after ``downtime`` seconds of refusing connections). A dropped network comes back with
        it; a slow network and refused loads stay."""
        server = self._require_server()
        media = self._media
        self._switch_app(self._apps[APP_BACKDROP], media_reason=None)
        self._standby = False
        self.network.set_mode("reset")
        server.refuse()
        self._notify()
        await server.wait_no_links()
        if media is not None:
            await media.ended()
        if downtime > 0:
            await trio.sleep(downtime)
        self.network.set_mode("ok")
        server.resume()
        self._notify()

    def _require_server(self) -> CastServer:
        if self._server is None:
            raise RuntimeError(f"{self!r} is not running")
        return self._server

    # ------------------------------------------------------------------ apps

    def _switch_app(self, spec: AppSpec, *, media_reason: str | None) -> App:
        """Run ``spec`` in place of the current app, whose media ends with ``media_reason``;
        the caller announces the change, then closes the old app. Returns the old app."""
        old = self._app
        if self._media is not None:
            self._media.end(media_reason)
        self._app = App(spec)
        self._media = None
        if self._app.speaks_media:
            if self._nursery is None:
                raise RuntimeError(f"{self!r} is not running")
            transport = self._app.transport_id
            self._media = MediaChannel(
                self._nursery,
                self._make_playback,
                lambda payload, request_id: self._broadcast(transport, NS_MEDIA, payload, request_id),
                self._notify,
                refusal=lambda: self._refuse,
            )
        log.info("app %s (%s) running, session %s", spec.app_id, spec.name, self._app.session_id)
        return old

    def _close_app(self, old: App) -> None:
        """CLOSE, from the old app's transport, to every sender connected to it."""
        for link in self._links():
            for sender in link.senders_of(old.transport_id):
                link.send(old.transport_id, sender, NS_CONNECTION, {"type": "CLOSE"})
                link.virtual.discard((sender, old.transport_id))

    def _make_playback(self, url: str, content_type: str | None, start: float | None, paused: bool) -> Playback:
        if self.player == "ffmpeg":
            return FfmpegPlayback(self._ffmpeg, url, content_type, start)
        query = {"src": url, "type": content_type or ""}
        if start is not None:
            query["start"] = str(start)
        if paused:
            query["paused"] = "1"
        return ShakaPlayback(f"http://{self.host}:{HTTP_PORT}/receiver.html?{urlencode(query)}", url, content_type, self._chromium)

    # ------------------------------------------------------------------ messages

    def _links(self) -> list[SenderLink]:
        return list(self._server.links) if self._server else []

    def _on_message(self, link: SenderLink, msg: Message) -> None:
        self.received.append((msg.namespace, msg.payload if msg.binary is None else {"binary": len(msg.binary)}))
        if len(self.received) > RECEIVED_KEEP:
            del self.received[: RECEIVED_KEEP // 5]
        ns = msg.namespace
        if ns == NS_CONNECTION:
            self._on_connection(link, msg)
        elif not is_transport_namespace(ns) and (msg.source_id, msg.destination_id) not in link.virtual:
            log.debug("dropped %s message from %s to %s: no virtual connection", ns, msg.source_id, msg.destination_id)
        elif ns == NS_HEARTBEAT:
            if msg.type == "PING":
                link.send(msg.destination_id, msg.source_id, NS_HEARTBEAT, {"type": "PONG"})
        elif ns == NS_DEVICE_AUTH:
            link.send(msg.destination_id, msg.source_id, NS_DEVICE_AUTH, auth_error())
        elif ns == NS_RECEIVER and msg.destination_id == PLATFORM_ID:
            self._on_receiver(link, msg)
        elif ns == NS_MEDIA and self._media is not None and msg.destination_id == self._app.transport_id:
            self._media.handle(link, msg)
        else:
            log.debug("ignored %s message to %s: %s", ns, msg.destination_id, msg.payload)

    def _on_connection(self, link: SenderLink, msg: Message) -> None:
        key = (msg.source_id, msg.destination_id)
        if BROADCAST_ID in key:
            return
        if msg.type == "CONNECT":
            if msg.destination_id not in (PLATFORM_ID, self._app.transport_id):
                link.send(msg.destination_id, msg.source_id, NS_CONNECTION, {"type": "CLOSE"})
                return
            link.virtual.add(key)
            version = negotiated_version(msg.payload)
            if version is not None:
                link.send(msg.destination_id, msg.source_id, NS_CONNECTION, {"type": "CONNECTED", "protocolVersion": version})
        elif msg.type == "CLOSE":
            link.virtual.discard(key)
        self._notify()

    def _on_receiver(self, link: SenderLink, msg: Message) -> None:
        kind = msg.type
        if kind == "GET_STATUS":
            link.reply(msg, self._receiver_payload())
        elif kind == "LAUNCH":
            self._on_launch(link, msg)
        elif kind == "STOP":
            self._on_stop_app(link, msg)
        elif kind == "SET_VOLUME":
            if not self._volume.apply(msg.payload):
                link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
                return
            self.volume_changes.append({**self._volume.entry(), "app_id": self.app_id})
            del self.volume_changes[:-VOLUME_CHANGES_KEEP]
            self._broadcast_receiver(msg.request_id)
            self._notify()
        elif kind == "GET_APP_AVAILABILITY":
            ids = msg.payload.get("appId")
            ids = [ids] if isinstance(ids, str) else ids if isinstance(ids, list) else []
            availability = {i: ("APP_AVAILABLE" if i in self._apps else "APP_UNAVAILABLE") for i in ids if isinstance(i, str)}
            link.reply(msg, {"responseType": "GET_APP_AVAILABILITY", "availability": availability})
        else:
            link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND"})

    def _on_launch(self, link: SenderLink, msg: Message) -> None:
        app_id = msg.payload.get("appId")
        if not isinstance(app_id, str) or not app_id:
            link.reply(msg, {"type": "LAUNCH_ERROR", "reason": "BAD_PARAMETER"})
            return
        spec = self._apps.get(app_id)
        if spec is None:
            link.reply(msg, {"type": "LAUNCH_ERROR", "reason": "NOT_FOUND"})
            return
        self._standby = False  # like HDMI-CEC: casting wakes the TV and selects its input
        old = self._switch_app(spec, media_reason="INTERRUPTED") if spec.app_id != self.app_id else None
        if old is not None and not self._volume.muted:
            self.chimes += 1
        self._broadcast_receiver(msg.request_id)
        if old is not None:
            self._close_app(old)
        self._notify()

    def _on_stop_app(self, link: SenderLink, msg: Message) -> None:
        session_id = msg.payload.get("sessionId")
        if session_id is not None and session_id != self._app.session_id:
            link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_SESSION_ID"})
            return
        old = self._switch_app(self._apps[APP_BACKDROP], media_reason=None) if not self._app.spec.idle_screen else None
        self._broadcast_receiver(msg.request_id)
        if old is not None:
            self._close_app(old)
        self._notify()

    def _receiver_payload(self) -> dict[str, Any]:
        return {"type": "RECEIVER_STATUS", "status": receiver_status(self._app, self._volume, standby=self._standby)}

    def _broadcast(self, source_id: str, namespace: str, payload: dict[str, Any], request_id: int = 0) -> None:
        """From ``source_id`` to ``*`` on every connection; ``request_id`` of the request this
        answers, 0 for news nobody asked for."""
        for link in self._links():
            link.send(source_id, BROADCAST_ID, namespace, {**payload, "requestId": request_id})

    def _broadcast_receiver(self, request_id: int = 0) -> None:
        self._broadcast(PLATFORM_ID, NS_RECEIVER, self._receiver_payload(), request_id)


@asynccontextmanager
async def open_virtual_tv(host: str = "127.0.0.2", name: str = "Virtual TV", **options: Any) -> AsyncIterator[VirtualTV]:
    """A running :class:`VirtualTV` for the block (``options``: its keyword arguments: player,
    mdns, uuid…); stopped (players, connections, files) on exit."""
    tv = VirtualTV(host, name, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(tv.run)
            try:
                yield tv
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaves = flatten(group)
        if len(leaves) == 1:
            reraise_alone(leaves[0])
        raise
