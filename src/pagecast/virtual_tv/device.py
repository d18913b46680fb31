"""The virtual Cast device: one TV on its own loopback address, speaking CASTV2 on 8009 and
HTTP on 8008/8443, running the Default Media Receiver and really playing what it is sent.

Everything it does runs in one nursery it owns (connections, HTTP, players, mDNS); state
changes are synchronous and decided here, messages leave through each connection's queue.
Sources for the behaviour: ``docs/virtual-tv.md``.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import tempfile
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio

from ..groups import flatten, reraise_alone
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
)
from .http import DeviceSite, serve_http
from .links import CastServer, SenderLink
from .net import Network, open_listener
from .players import PLAYERS, FfmpegPlayback, Playback, PlayerError, ShakaPlayback
from .status import (
    APP_BACKDROP,
    KNOWN_APPS,
    LOAD_FAILED,
    MEDIA_UNKNOWN,
    App,
    AppSpec,
    MediaSession,
    Volume,
    normalized_media,
    receiver_status,
)

log = logging.getLogger(__name__)

MODEL_NAME = "pagecast virtual TV"
MANUFACTURER = "pagecast"
CAST_PORT = 8009
HTTP_PORT = 8008
HTTPS_PORT = 8443
#: No progress for this long while PLAYING is a stall: the state drops to BUFFERING.
STALL_AFTER_S = 1.5
#: A LOAD is answered when playback starts or fails, or with BUFFERING after this long
#: (pychromecast's own wait for the answer is 10 s).
LOAD_ANSWER_AFTER_S = 5.0
RECEIVED_KEEP = 5000


@dataclass
class _Playing:
    """A media session and the player behind it."""

    session: MediaSession
    playback: Playback
    load_request: tuple[SenderLink, Message] | None
    paused: bool = False
    last_position: float | None = None
    last_frames: int = 0
    last_advance: float = 0.0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)


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
            from ..settings import Settings

            ffmpeg = Settings.from_env().ffmpeg
        self._ffmpeg = ffmpeg or "ffmpeg"
        self._chromium = chromium
        self._apps = dict(KNOWN_APPS)
        for app_id, app_name in (apps or {}).items():
            self._apps.setdefault(app_id, AppSpec(app_id, app_name, idle_text=app_name))
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.network = Network()
        self.loads = 0
        self._app: App | None = App(self._apps[APP_BACKDROP])
        self._volume = Volume()
        self._standby = False
        self._playing: _Playing | None = None
        self._refuse: str | None = None
        self._media_ids = itertools.count(1)
        self._item_ids = itertools.count(1)
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
    def app_id(self) -> str | None:
        return self._app.spec.app_id if self._app else None

    @property
    def player_state(self) -> str:
        return self._playing.session.player_state if self._playing else "IDLE"

    @property
    def media(self) -> dict[str, Any] | None:
        return self._playing.session.media if self._playing else None

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
        playing = self._playing
        session = playing.session if playing else None
        return {
            "name": self.name,
            "uuid": str(self.uuid),
            "host": self.host,
            "model_name": MODEL_NAME,
            "player": self.player,
            "screen_url": self.screen_url,
            "receiver": receiver_status(self._app, self._volume, standby=self._standby),
            "app_id": self.app_id,
            "app_name": self._app.spec.name if self._app else None,
            "idle_screen": bool(self._app and self._app.spec.idle_screen),
            "standby": self._standby,
            "volume": self._volume.entry(),
            "media": session.media if session else None,
            "media_status": session.entry() if session else None,
            "player_state": self.player_state,
            "idle_reason": session.idle_reason if session else None,
            "current_time": session.current_time if session else 0.0,
            "stats": session.stats() if session else MediaSession(0, {}, 0).stats(),
            "loads": self.loads,
            "network": {"mode": self.network.mode, "delay_s": self.network.delay, "refuse_load": self._refuse},
            "connections": [
                {"peer": link.peer, "virtual": sorted(f"{src}->{dst}" for src, dst in link.virtual)} for link in self._links()
            ],
        }

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Return the first state for which ``predicate`` is true; :class:`TimeoutError` if none
        comes within ``timeout`` seconds (its message carries the last state)."""
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
        """Serve until cancelled. Raises :class:`~pagecast.virtual_tv.BindError` if the
        address or a port is not available."""
        from .tls import make_server_context

        if self._nursery is not None:
            raise RuntimeError(f"{self!r} is already running")
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
            self._server = CastServer(self.host, CAST_PORT, ssl_context, self.network, self._on_message)
            self._server.on_link_closed(lambda link: self._notify())
            site = DeviceSite(self)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._server.serve, cast)
                nursery.start_soon(serve_http, http, site)
                nursery.start_soon(serve_http, https, site, ssl_context)
                from .mdns import announce

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
        self._end_media("CANCELLED")

    def remote_quit(self) -> None:
        """The app is closed from elsewhere: back to the idle screen, its senders get CLOSE."""
        if self._app is None or self._app.spec.idle_screen:
            return
        old = self._switch_app(self._apps[APP_BACKDROP], media_reason=None)
        self._broadcast_receiver()
        self._close_app(old)
        self._notify()

    def launch_app(self, app_id: str, name: str | None = None) -> None:
        """Another app takes over (someone casts YouTube): our media is INTERRUPTED."""
        if not app_id:
            raise ValueError("launch_app needs an app id")
        spec = self._apps.get(app_id) or AppSpec(app_id, name or app_id, idle_text=name or app_id)
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
        if self.network.mode == "reset" and mode == "silent":
            self._require_server().resume()
        self.network.set_mode(mode)
        if mode == "reset":
            self._require_server().refuse()
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
        """Reboot: every connection drops, app and media are lost, the idle screen comes back.
        Other faults (slow network, refused loads) stay as they were."""
        server = self._require_server()
        playing = self._playing
        self._end_media(None)
        self._playing = None
        self.network.set_mode("reset")
        server.refuse()
        self._notify()
        await server.wait_no_links()
        if playing is not None:
            await playing.done.wait()
        self._app = App(self._apps[APP_BACKDROP])
        self._standby = False
        if downtime > 0:
            await trio.sleep(downtime)
        self.network.set_mode("ok")
        server.resume()
        self._notify()

    def _require_server(self) -> CastServer:
        if self._server is None:
            raise RuntimeError(f"{self!r} is not running")
        return self._server

    # ------------------------------------------------------------------ messages in

    def _links(self) -> list[SenderLink]:
        return list(self._server.links) if self._server else []

    def _on_message(self, link: SenderLink, msg: Message) -> None:
        self.received.append((msg.namespace, msg.payload if msg.binary is None else {"binary": len(msg.binary)}))
        if len(self.received) > RECEIVED_KEEP:
            del self.received[: RECEIVED_KEEP // 5]
        ns = msg.namespace
        if ns == NS_CONNECTION:
            self._on_connection(link, msg)
        elif ns == NS_HEARTBEAT:
            if msg.type == "PING":
                link.send(msg.destination_id, msg.source_id, NS_HEARTBEAT, {"type": "PONG"})
        elif ns == NS_DEVICE_AUTH:
            link.send(msg.destination_id, msg.source_id, NS_DEVICE_AUTH, auth_error())
        elif ns == NS_RECEIVER and msg.destination_id == PLATFORM_ID:
            self._on_receiver(link, msg)
        elif ns == NS_MEDIA and self._app is not None and self._app.speaks_media and msg.destination_id == self._app.transport_id:
            self._on_media(link, msg)
        else:
            log.debug("ignored %s message to %s: %s", ns, msg.destination_id, msg.payload)

    def _on_connection(self, link: SenderLink, msg: Message) -> None:
        key = (msg.source_id, msg.destination_id)
        if msg.type == "CONNECT":
            if msg.destination_id != PLATFORM_ID and (self._app is None or msg.destination_id != self._app.transport_id):
                link.send(msg.destination_id, msg.source_id, NS_CONNECTION, {"type": "CLOSE"})
                return
            link.virtual.add(key)
        elif msg.type == "CLOSE":
            link.virtual.discard(key)
        self._notify()

    def _on_receiver(self, link: SenderLink, msg: Message) -> None:
        kind = msg.type
        if kind == "GET_STATUS":
            self._reply(link, msg, self._receiver_payload())
        elif kind == "LAUNCH":
            self._on_launch(link, msg)
        elif kind == "STOP":
            self._on_stop_app(link, msg)
        elif kind == "SET_VOLUME":
            self._on_set_volume(link, msg, self._volume, receiver=True)
        elif kind == "GET_APP_AVAILABILITY":
            ids = msg.payload.get("appId")
            ids = [ids] if isinstance(ids, str) else ids if isinstance(ids, list) else []
            availability = {i: ("APP_AVAILABLE" if i in self._apps else "APP_UNAVAILABLE") for i in ids if isinstance(i, str)}
            self._reply(link, msg, {"type": "GET_APP_AVAILABILITY", "responseType": "GET_APP_AVAILABILITY", "availability": availability})
        else:
            self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND"})

    def _on_launch(self, link: SenderLink, msg: Message) -> None:
        app_id = msg.payload.get("appId")
        spec = self._apps.get(app_id) if isinstance(app_id, str) else None
        if spec is None:
            self._reply(link, msg, {"type": "LAUNCH_ERROR", "reason": "NOT_FOUND"})
            return
        self._standby = False  # like HDMI-CEC: casting wakes the TV and selects its input
        old = None
        if self._app is None or self._app.spec.app_id != spec.app_id:
            old = self._switch_app(spec, media_reason="INTERRUPTED")
        self._reply(link, msg, self._receiver_payload())
        self._broadcast_receiver(exclude=link)
        self._close_app(old)
        self._notify()

    def _on_stop_app(self, link: SenderLink, msg: Message) -> None:
        app = self._app
        session_id = msg.payload.get("sessionId")
        if app is not None and not app.spec.idle_screen:
            if session_id is not None and session_id != app.session_id:
                self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
                return
            old = self._switch_app(self._apps[APP_BACKDROP], media_reason=None)
            self._reply(link, msg, self._receiver_payload())
            self._broadcast_receiver(exclude=link)
            self._close_app(old)
            self._notify()
        else:
            self._reply(link, msg, self._receiver_payload())

    def _on_set_volume(self, link: SenderLink, msg: Message, volume: Volume, *, receiver: bool) -> None:
        wanted = msg.payload.get("volume")
        level = wanted.get("level") if isinstance(wanted, dict) else None
        muted = wanted.get("muted") if isinstance(wanted, dict) else None
        valid_level = isinstance(level, (int, float)) and not isinstance(level, bool)
        if (level is None and muted is None) or (level is not None and not valid_level) or (muted is not None and not isinstance(muted, bool)):
            self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
            return
        if level is not None:
            volume.level = min(max(float(level), 0.0), 1.0)
        if muted is not None:
            volume.muted = muted
        if receiver:
            self._reply(link, msg, self._receiver_payload())
            self._broadcast_receiver(exclude=link)
        else:
            self._reply(link, msg, self._media_payload())
            self._broadcast_media(exclude=link)
        self._notify()

    def _on_media(self, link: SenderLink, msg: Message) -> None:
        kind = msg.type
        if kind == "GET_STATUS":
            self._reply(link, msg, self._media_payload())
            return
        if kind == "LOAD":
            self._on_load(link, msg)
            return
        if kind not in ("PLAY", "PAUSE", "STOP", "SEEK", "SET_VOLUME"):
            self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND"})
            return
        playing = self._active()
        if playing is None or msg.payload.get("mediaSessionId") != playing.session.session_id:
            self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_MEDIA_SESSION_ID"})
            return
        session = playing.session
        if kind == "STOP":
            self._end_media("CANCELLED", exclude=link)
            self._reply(link, msg, {"type": "MEDIA_STATUS", "status": [session.entry()]})
            return
        if kind == "SET_VOLUME":
            self._on_set_volume(link, msg, session.volume, receiver=False)
            return
        if kind == "SEEK":
            target = msg.payload.get("currentTime")
            relative = msg.payload.get("relativeTime")
            if isinstance(relative, (int, float)) and not isinstance(relative, bool):
                target = session.current_time + relative
            if not isinstance(target, (int, float)) or isinstance(target, bool):
                self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
                return
            playing.playback.seek(float(target))
            session.current_time = float(target)
            playing.last_position = None
            resume = msg.payload.get("resumeState")
            if resume == "PLAYBACK_PAUSE":
                self._pause(playing)
            elif resume == "PLAYBACK_START" or not playing.paused:
                playing.paused = False
                playing.playback.resume()
                session.player_state = "BUFFERING"
        elif kind == "PAUSE":
            self._pause(playing)
        elif kind == "PLAY":
            playing.paused = False
            playing.playback.resume()
            playing.last_advance = trio.current_time()
            session.player_state = "PLAYING" if session.started else "BUFFERING"
        self._reply(link, msg, self._media_payload())
        self._broadcast_media(exclude=link)
        self._notify()

    def _pause(self, playing: _Playing) -> None:
        playing.paused = True
        playing.playback.pause()
        playing.session.player_state = "PAUSED"

    def _on_load(self, link: SenderLink, msg: Message) -> None:
        media = msg.payload.get("media")
        url = (media.get("contentUrl") or media.get("contentId")) if isinstance(media, dict) else None
        if not isinstance(media, dict) or not isinstance(url, str) or not url:
            self._reply(link, msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
            return
        self.loads += 1
        item_id = next(self._item_ids)
        if self._refuse is not None:
            log.info("refusing LOAD of %s: %s", url, self._refuse)
            self._reply(link, msg, {"type": "LOAD_FAILED", "itemId": item_id, "reason": self._refuse, "detailedErrorCode": LOAD_FAILED})
            self._notify()
            return
        self._end_media("INTERRUPTED")
        start = msg.payload.get("currentTime")
        start = float(start) if isinstance(start, (int, float)) and not isinstance(start, bool) else None
        autoplay = msg.payload.get("autoplay", True) is not False
        session = MediaSession(next(self._media_ids), normalized_media(media), item_id)
        playback = self._make_playback(url, media.get("contentType"), start, paused=not autoplay)
        playing = _Playing(session, playback, (link, msg), last_advance=trio.current_time())
        self._playing = playing
        log.info("LOAD %s (%s) as media session %d", url, media.get("contentType"), session.session_id)
        if not autoplay:
            self._pause(playing)
            self._answer_load(playing)
        assert self._nursery is not None
        self._nursery.start_soon(self._play, playing)
        self._broadcast_media(exclude=link)
        self._notify()

    def _make_playback(self, url: str, content_type: Any, start: float | None, *, paused: bool) -> Playback:
        content_type = content_type if isinstance(content_type, str) else None
        if self.player == "ffmpeg":
            return FfmpegPlayback(self._ffmpeg, url, content_type, start)
        query = {"src": url, "type": content_type or ""}
        if start is not None:
            query["start"] = str(start)
        if paused:
            query["paused"] = "1"
        return ShakaPlayback(f"http://{self.host}:{HTTP_PORT}/receiver.html?{urlencode(query)}", url, content_type, self._chromium)

    # ------------------------------------------------------------------ playing

    def _active(self) -> _Playing | None:
        return self._playing if self._playing is not None and not self._playing.session.ended else None

    async def _play(self, playing: _Playing) -> None:
        try:
            with playing.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_stalls, playing)
                    nursery.start_soon(self._answer_load_later, playing)
                    reason, error = await self._outcome(playing)
                    nursery.cancel_scope.cancel()
                if error is not None:
                    log.warning("media session %d failed: %s", playing.session.session_id, error)
                self._end_media(reason, error=error, playing=playing)
        finally:
            playing.done.set()

    async def _outcome(self, playing: _Playing) -> tuple[str, PlayerError | None]:
        try:
            await playing.playback.run(partial(self._on_progress, playing))
        except Exception as exc:  # noqa: BLE001 - any player failure is the media's ERROR
            leaves = flatten(exc)
            error = next((leaf for leaf in leaves if isinstance(leaf, PlayerError)), None)
            return "ERROR", error or PlayerError(f"{type(leaves[0]).__name__}: {leaves[0]}", MEDIA_UNKNOWN)
        return "FINISHED", None

    def _on_progress(self, playing: _Playing, position: float, frames: int) -> None:
        session = playing.session
        if session.ended:
            return
        new_frames = frames - playing.last_frames if frames >= playing.last_frames else frames
        playing.last_frames = frames
        moved = playing.last_position is not None and position > playing.last_position + 0.01
        if new_frames > 0 or moved:
            if moved:
                session.seconds_played += min(position - playing.last_position, 2.0)  # type: ignore[operator]
            session.frames += max(new_frames, 0)
            playing.last_advance = trio.current_time()
            if session.player_state == "BUFFERING" and not playing.paused:
                session.player_state = "PLAYING"
                session.started = True
                self._answer_load(playing)
                self._broadcast_media()
        playing.last_position = position
        session.current_time = position
        self._notify()

    async def _watch_stalls(self, playing: _Playing) -> None:
        session = playing.session
        while True:
            await trio.sleep(0.25)
            if session.player_state == "PLAYING" and trio.current_time() - playing.last_advance > STALL_AFTER_S:
                log.info("media session %d stalled at %.2f s", session.session_id, session.current_time)
                session.player_state = "BUFFERING"
                session.stalls += 1
                self._broadcast_media()
                self._notify()

    async def _answer_load_later(self, playing: _Playing) -> None:
        await trio.sleep(LOAD_ANSWER_AFTER_S)
        self._answer_load(playing)

    def _answer_load(self, playing: _Playing) -> None:
        if playing.load_request is None:
            return
        link, msg = playing.load_request
        playing.load_request = None
        self._reply(link, msg, {"type": "MEDIA_STATUS", "status": [playing.session.entry()]})

    def _end_media(self, reason: str | None, *, error: PlayerError | None = None, exclude: SenderLink | None = None, playing: _Playing | None = None) -> None:
        """End the media session with ``reason`` (broadcast to its senders); None ends it
        silently, as when its app goes away."""
        playing = playing or self._playing
        if playing is None or playing.session.ended or playing is not self._playing:
            return
        session = playing.session
        session.player_state = "IDLE"
        session.idle_reason = reason
        if error is not None:
            session.error = str(error)
            session.detailed_error_code = error.detailed_error_code
        playing.scope.cancel()
        if playing.load_request is not None:
            link, msg = playing.load_request
            playing.load_request = None
            if reason == "ERROR":
                self._reply(link, msg, {"type": "LOAD_FAILED", "itemId": session.item_id, "detailedErrorCode": session.detailed_error_code or MEDIA_UNKNOWN})
            else:
                self._reply(link, msg, {"type": "LOAD_CANCELLED", "itemId": session.item_id})
        if reason is not None:
            self._broadcast_media(entry=session.entry(), exclude=exclude)
        self._notify()

    # ------------------------------------------------------------------ apps

    def _switch_app(self, spec: AppSpec, *, media_reason: str | None) -> App | None:
        """Replace the running app; the caller announces it, then closes the old one."""
        old = self._app
        self._end_media(media_reason)
        self._playing = None
        self._app = App(spec)
        log.info("app %s (%s) running, session %s", spec.app_id, spec.name, self._app.session_id)
        return old

    def _close_app(self, old: App | None) -> None:
        """CLOSE, from the old app's transport, to every sender connected to it."""
        if old is None:
            return
        for link in self._links():
            for sender in link.senders_of(old.transport_id):
                link.send(old.transport_id, sender, NS_CONNECTION, {"type": "CLOSE"})
                link.virtual.discard((sender, old.transport_id))

    # ------------------------------------------------------------------ messages out

    def _receiver_payload(self) -> dict[str, Any]:
        return {"type": "RECEIVER_STATUS", "status": receiver_status(self._app, self._volume, standby=self._standby)}

    def _media_payload(self) -> dict[str, Any]:
        playing = self._active()
        return {"type": "MEDIA_STATUS", "status": [playing.session.entry()] if playing else []}

    def _reply(self, link: SenderLink, msg: Message, payload: dict[str, Any]) -> None:
        link.send(msg.destination_id, msg.source_id, msg.namespace, {**payload, "requestId": msg.request_id})

    def _broadcast(self, source_id: str, namespace: str, payload: dict[str, Any], exclude: SenderLink | None = None) -> None:
        for link in self._links():
            if link is not exclude and link.senders_of(source_id):
                link.send(source_id, BROADCAST_ID, namespace, {**payload, "requestId": 0})

    def _broadcast_receiver(self, exclude: SenderLink | None = None) -> None:
        self._broadcast(PLATFORM_ID, NS_RECEIVER, self._receiver_payload(), exclude)

    def _broadcast_media(self, *, entry: dict[str, Any] | None = None, exclude: SenderLink | None = None) -> None:
        if self._app is None:
            return
        payload = {"type": "MEDIA_STATUS", "status": [entry]} if entry is not None else self._media_payload()
        self._broadcast(self._app.transport_id, NS_MEDIA, payload, exclude)


@asynccontextmanager
async def open_virtual_tv(host: str = "127.0.0.2", name: str = "Virtual TV", **options: Any) -> AsyncIterator[VirtualTV]:
    """A running :class:`VirtualTV` for the block; stopped (players, connections, files) on exit."""
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
