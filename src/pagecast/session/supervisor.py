"""The stream supervisor and its session actors.

Each session owns a nursery holding its renderer (Chromium), encoder (FFmpeg), the
publisher's stream and, when it casts, its Cast watcher; cancelling the session's scope (a /stop, its ``duration``, a crash of a
part, SIGTERM) is the only way a session ends, and cleanup follows from structure. The
publisher belongs to the session, not to the encoder, so an encoder restarted inside the
session keeps the stream URL and continues the playlist.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import trio

from ..core.device import Device
from ..core.encoders import LIBX264
from ..core.errors import CastError, Conflict, EncodeError, Refused, RenderError, ShuttingDown, TooManySessions
from ..core.ffmpeg import Dense, EncoderStats, EncodeSpec
from ..core.request import StartRequest
from ..core.screen import Handover, Stream
from ..core.settings import Settings
from ..lowlevel.groups import first_leaf
from .cast import CastWatcher
from .encode import run_encoder
from .encoder_probe import EncoderChoice
from .publish import Publisher
from .render import PageSpec, run_renderer

log = logging.getLogger(__name__)

ENDED_HISTORY = 50
FMP4_MIN_FPS = 5
FMP4_KEYFRAME_INTERVAL = 0.5


@dataclass
class RestartPolicy:
    """Encoder restarts inside a session: at most ``max_restarts`` within ``window`` seconds."""

    max_restarts: int = 3
    window: float = 60.0
    backoff: float = 0.5


class Session:
    """One cast session: a page, streamed, until stopped."""

    def __init__(
        self, request: StartRequest, settings: Settings, *, device: Device | None = None,
        base_url: Callable[[], str] = lambda: "", inherited: Handover | None = None,
        encoders: EncoderChoice | None = None,
    ):
        self.id = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
        self.request = request
        self.settings = settings
        self.target = device
        self.base_url = base_url
        self.watcher: CastWatcher | None = None
        self._inherited = inherited
        self._live = trio.Event()
        self.ready = trio.Event()  # live and, when casting, playing on the TV; or ended
        self.state = "starting"
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.started_at = time.time()
        self.live_at: float | None = None
        self.ended_at: float | None = None
        self.encoder_restarts = 0
        self.encoders = encoders if encoders is not None else EncoderChoice.unprobed(LIBX264)
        self.encoder_backend: str | None = None  # known once the startup probe is done
        self.encoder_fallback: dict[str, Any] | None = None  # a hardware encoder replaced by software
        self.publisher = Publisher(
            segment_duration=self.segment_duration,
            window=settings.playlist_window,
            hold_back=settings.hold_back or None,
        )
        self.render_stats: dict[str, Any] = {}
        self.encoder_stats = EncoderStats()
        self.cancel_scope = trio.CancelScope()
        self._encoder_control: trio.MemorySendChannel | None = None  # a clone of the frames channel, for Dense
        self.ended = trio.Event()
        self.settled = trio.Event()  # live, or ended without getting there
        self._start_monotonic = trio.current_time()
        self.startup_seconds: float | None = None

    @property
    def segment_duration(self) -> float:
        """A progressive viewer starts at the latest keyframe: in ``fmp4`` mode keyframes come
        every FMP4_KEYFRAME_INTERVAL so that the start is never older than that."""
        q = self.request.quality
        return min(q.segment_duration, FMP4_KEYFRAME_INTERVAL) if self.request.mode == "fmp4" else q.segment_duration

    @property
    def device(self) -> str | None:
        return self.request.device

    @property
    def stream_url(self) -> str:
        name = "live.mp4" if self.request.mode == "fmp4" else "index.m3u8"
        return f"{self.base_url()}/streams/{self.id}/{name}"

    @property
    def active(self) -> bool:
        return self.state in ("starting", "live")

    def new_viewer(self) -> None:
        """A progressive viewer joined: make the next couple of seconds dense (see encode.Dense)."""
        if self._encoder_control is not None:
            try:
                self._encoder_control.send_nowait(Dense())
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # a frame is already waiting, which wakes the encoder just as well

    def stop(self, reason: str, give_back: bool = True) -> None:
        """End the session. ``give_back=False`` leaves the TV as it is: it ended us itself, or
        a new session takes it over."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if not give_back and self.watcher is not None:
            self.watcher.give_back = False
        if self.active:
            self.state = "stopping"
        self.cancel_scope.cancel()

    def status(self) -> dict[str, Any]:
        pub = self.publisher.stats
        return {
            "id": self.id,
            "state": self.state,
            **self.request.public(),
            "started_at": _iso(self.started_at),
            "live_at": _iso(self.live_at),
            "ended_at": _iso(self.ended_at),
            "startup_seconds": self.startup_seconds,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "frames": {
                "captured": self.render_stats.get("frames_captured", 0),
                "dropped": self.render_stats.get("frames_dropped", 0),
                "encoded": self.encoder_stats.frames_out,
                "repeated": self.encoder_stats.repeats,
            },
            "encoder_restarts": self.encoder_restarts,
            "encoder": {
                "backend": self.encoder_backend,
                "fell_back_from": (self.encoder_fallback or {}).get("from"),
                "reason": (self.encoder_fallback or {}).get("reason"),
                "fallbacks": 1 if self.encoder_fallback else 0,
            },
            "pipeline_latency_ms": self.encoder_stats.latency_ms(),
            "segments": pub.get("segments_produced", 0),
            "viewers": pub.get("viewers", 0),
            "publisher": pub,
            "cast": self.watcher.status() if self.watcher is not None else None,
        }

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The session actor: runs until stopped, its duration ends, or a part fails.

        Started (in the ``nursery.start`` sense) once its TV, if any, is connected and free:
        a device that is unreachable or busy fails the /start with nothing else begun."""
        req = self.request
        q = req.quality
        page = PageSpec(
            url=req.url,
            width=q.width,
            height=q.height,
            device_scale_factor=req.device_scale_factor,
            fps=q.fps,
            jpeg_quality=self.settings.jpeg_quality,
            auth=req.auth,
            load_timeout=self.settings.load_timeout,
            login_paths=self.settings.login_paths,
        )
        log.info("session %s starting: %s (%s, %s)", self.id, self.request.public()["url"], q.name, req.mode)
        started = False
        try:
            with self.cancel_scope:
                if req.duration is not None:
                    self.cancel_scope.deadline = trio.current_time() + req.duration
                async with trio.open_nursery() as nursery:
                    if self.target is not None:
                        self.watcher = CastWatcher(
                            self.target, req, self.settings, Stream.for_session(self.stream_url, req.mode, _title(req.url)),
                            session_id=self.id, stop=self.stop, inherited=self._inherited,
                        )
                        await nursery.start(self.watcher.run, self._live.wait)
                    task_status.started()
                    started = True
                    frames_send, frames_recv = trio.open_memory_channel(2)
                    self._encoder_control = frames_send.clone()
                    nursery.start_soon(self._encode, frames_recv)
                    await nursery.start(self._render, page, frames_send)
                    if req.mode == "fmp4":
                        await self.publisher.wait_keyframe()
                    else:
                        await self.publisher.wait_live()
                    if self.state == "starting":
                        self.state = "live"
                        self.live_at = time.time()
                        self.startup_seconds = round(trio.current_time() - self._start_monotonic, 3)
                        log.info("session %s live after %.2f s", self.id, self.startup_seconds)
                    self._live.set()
                    self.settled.set()
                    if self.watcher is not None:
                        await self.watcher.playing.wait()
                    self.ready.set()
            if self.stop_reason is None and req.duration is not None and self.cancel_scope.cancelled_caught:
                self.stop_reason = f"duration of {req.duration:g} s ended"
            if not started:
                # Stopped (a /stop, a newer /start for the TV, shutdown) while it was connecting.
                raise Conflict(f"the session was stopped before it started: {self.stop_reason or 'cancelled'}")
        except Refused as exc:
            self._fail(str(exc))
            raise
        except (RenderError, EncodeError, CastError) as exc:
            self._fail(str(exc))
        except BaseExceptionGroup as group:
            refused = group.subgroup(Refused)
            if refused is not None:
                self._fail(str(first_leaf(refused)))
                raise first_leaf(refused) from None
            matched, rest = group.split((RenderError, EncodeError, CastError))
            if matched is not None:
                self._fail(str(first_leaf(matched)))
            if rest is not None:
                # A bug must fail this session, not the service; cancellation and the like go on.
                bugs, rest = rest.split(Exception)
                if bugs is not None:
                    log.error("session %s crashed", self.id, exc_info=first_leaf(bugs))
                    if self.state != "failed":
                        self._fail(f"internal error: {first_leaf(bugs)!r}")
                if rest is not None:
                    raise rest
        except Exception as exc:  # a bug must fail this session, not the service
            log.exception("session %s crashed", self.id)
            self._fail(f"internal error: {exc!r}")
        finally:
            if self._encoder_control is not None:
                self._encoder_control.close()
            self.publisher.end()
            if self.state != "failed":
                self.state = "stopped"
            self.ended_at = time.time()
            self.ended.set()
            self.settled.set()
            self.ready.set()
            log.info("session %s %s%s", self.id, self.state, f": {self.error or self.stop_reason}" if (self.error or self.stop_reason) else "")

    def _fail(self, message: str) -> None:
        self.state = "failed"
        self.error = message
        self.stop_reason = self.stop_reason or "failed"
        log.warning("session %s failed: %s", self.id, message)

    async def _render(self, page: PageSpec, frames_send, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with frames_send:
            await run_renderer(page, self.settings, frames_send, task_status=task_status, stats=self.render_stats)

    async def _encode(self, frames_recv) -> None:
        """Run FFmpeg; restart it inside the session when it dies, within a budget. A hardware
        encoder that dies is replaced by libx264 at once, outside that budget: the publisher
        continues the same stream with a discontinuity, so the TV needs no re-cast."""
        q = self.request.quality
        spec = EncodeSpec(
            width=q.width, height=q.height, fps=q.fps, bitrate_kbps=q.bitrate_kbps,
            segment_duration=self.segment_duration, x264_preset=self.settings.x264_preset,
            # FFmpeg muxes audio only as far as the video goes: a progressive viewer of an idle
            # page would get its audio in bursts, one per segment, and stall between them.
            min_fps=FMP4_MIN_FPS if self.request.mode == "fmp4" else 0,
            flush_frames=self.request.mode == "fmp4",
            hw_device=self.settings.vaapi_device,
        )
        backend = self.encoder_backend = await self.encoders.backend()
        policy = RestartPolicy()
        recent: list[float] = []
        async with frames_recv:
            while True:
                self.publisher.begin_generation()
                try:
                    await run_encoder(spec, self.settings.ffmpeg, frames_recv, self.publisher, stats=self.encoder_stats, backend=backend)
                except EncodeError as exc:
                    if backend != LIBX264:
                        reason = _last_words(str(exc))
                        log.warning("session %s: the %s encoder failed; continuing with libx264 in the same stream: %s", self.id, backend, reason)
                        self.encoder_fallback = {"from": backend, "reason": reason}
                        self.encoders.record_fallback(self.id, backend, reason)
                        backend = self.encoder_backend = LIBX264
                        continue
                    now = trio.current_time()
                    recent = [t for t in recent if now - t < policy.window]
                    if len(recent) >= policy.max_restarts:
                        raise EncodeError(f"the encoder failed {len(recent) + 1} times in {policy.window:g} s; last: {exc}") from None
                    recent.append(now)
                    self.encoder_restarts += 1
                    log.warning("session %s: encoder died, restarting (%d): %s", self.id, self.encoder_restarts, exc)
                    await trio.sleep(policy.backoff)


def _names(session: Session, spec: str) -> bool:
    """Whether ``spec`` (as given to /start: a name, uuid or address) names the session's device."""
    key = spec.strip().casefold()
    t = session.target
    if t is not None and key in (t.name.casefold(), t.uuid, t.uuid.replace("-", ""), t.host):
        return True
    return (session.device or "").casefold() == key


def _last_words(message: str, keep: int = 600) -> str:
    """An EncodeError's first line and FFmpeg's last lines, within ``keep`` characters."""
    if len(message) <= keep:
        return message
    head = message.split(":", 1)[0]
    return f"{head}: … {message[-(keep - len(head) - 4):]}"


def _title(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"pagecast: {parts.hostname or ''}{parts.path if parts.path not in ('', '/') else ''}"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class Supervisor:
    """Owns every session's task; the HTTP handlers ask it, they never own sessions."""

    def __init__(
        self, settings: Settings, directory: Directory | None = None, base_url: Callable[[], str] = lambda: "",
        encoders: EncoderChoice | None = None,
    ):
        self.settings = settings
        self.encoders = encoders if encoders is not None else EncoderChoice.unprobed(LIBX264)
        self.directory = directory or Directory(settings)
        self.base_url = base_url
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._device_locks: dict[str, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                for session in self.active():
                    session.stop("service shutting down")
                self._nursery = None

    def active(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.active or s.state == "stopping"]

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def start(self, request: StartRequest) -> Session:
        """Start a session; returns once it runs (and holds its TV, if it casts). A device that
        is unknown, unreachable or busy raises a Refused error and leaves nothing behind."""
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        device = await self.directory.resolve(request.device) if request.device else None
        if device is None:
            return await self._start(request, None)
        # One /start per TV at a time: a second one waits, then replaces the first (the latest
        # request wins), instead of both replacing a third and fighting over the screen.
        lock = self._device_locks.setdefault(device.uuid, trio.Lock())
        async with lock:
            return await self._start(request, device)

    async def _start(self, request: StartRequest, device: Device | None) -> Session:
        replaced = [s for s in self.active() if device is not None and s.target is not None and s.target.uuid == device.uuid]
        if len(self.active()) - len(replaced) >= self.settings.max_sessions:
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        inherited = None
        for old in replaced:
            # The TV goes straight to the new stream; what it showed before the first session
            # is what the new one gives back.
            if old.watcher is not None and inherited is None:
                inherited = old.watcher.handover()
            old.stop(f"replaced by a new session on {device.name}", give_back=False)
        for old in replaced:
            await old.ended.wait()
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        if len(self.active()) >= self.settings.max_sessions:  # others started while we waited
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        session = Session(request, self.settings, device=device, base_url=self.base_url, inherited=inherited, encoders=self.encoders)
        self.sessions[session.id] = session
        try:
            await self._nursery.start(session.run, name=f"session {session.id}")
        except BaseException:
            del self.sessions[session.id]
            raise
        self._forget_old()
        return session

    def by_device(self, device: Device) -> Session | None:
        return next((s for s in self.active() if s.target is not None and s.target.uuid == device.uuid), None)

    def stop(self, session_id: str | None = None, device: str | None = None, reason: str = "stopped by API") -> list[Session]:
        if session_id is not None:
            session = self.sessions.get(session_id)
            targets = [session] if session is not None and session.active else []
        elif device is not None:
            targets = [s for s in self.active() if _names(s, device)]
        else:
            targets = self.active()
        for s in targets:
            s.stop(reason)
        return targets

    def _forget_old(self) -> None:
        ended = [sid for sid, s in self.sessions.items() if not s.active and s.ended.is_set()]
        for sid in ended[: max(0, len(ended) - ENDED_HISTORY)]:
            del self.sessions[sid]
