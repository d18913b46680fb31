"""The session actor: one page, rendered once, streamed to any number of screens until it is
stopped.

A session owns a nursery holding its renderer (Chromium), encoder (FFmpeg) and its screens,
each a Cast watcher of its own (session/screens.py); the publisher belongs to the session, not to the encoder, so an
encoder restarted inside the session keeps the stream URL and continues the playlist; a
Chromium that grew old or big is replaced make-before-break, so the picture never freezes.
Cancelling the session's scope (a stop from the supervisor, its ``duration``, SIGTERM) or a
part ending it (a failure; the TV ending the cast, as ``DeviceEnded``) is the only way a
session ends, and cleanup follows from structure.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import trio

from ..core.answers import FramesAnswer, SessionAnswer
from ..core.device import Device
from ..core.encoders import LIBX264
from ..core.errors import CastError, Conflict, DeviceEnded, Refused
from ..core.ffmpeg import Dense, EncodeSpec
from ..core.lifecycle import State, move
from ..core.page import Frame
from ..core.playlist import hold_back_for
from ..core.request import CastOptions, StartRequest, redact_url
from ..core.screen import Handover, Stream
from ..core.settings import Settings
from ..core.supervision import ending
from ..core.tally import ScreenFigures, SessionFigures, device_stop_kind
from ..core.views import encoder_answer, encoder_child, renderer_child, session_answer
from ..lowlevel.groups import flatten
from .cast import CastWatcher
from .encode import run_encoder
from .encoder_probe import EncoderChoice
from .encoding import Encoding
from .history import History
from .publish import Publisher
from .render import Browser, PageSpec, run_renderer
from .renderers import Renderers
from .screens import Screen
from .thumbnail import Thumbnails

log = logging.getLogger(__name__)

FMP4_MIN_FPS = 5
FMP4_KEYFRAME_INTERVAL = 0.5


@dataclass(frozen=True)
class Parts:
    """What a session is made of. The real ones by default; tests give fakes, so a session's
    supervision (budgets, recycling, fallback, durations, screens) runs under a fake clock.

    ``render(page, settings, outlet, *, task_status, browser)`` runs one Chromium;
    ``browser(stats)`` is its handle (pid, memory); ``encode(spec, ffmpeg, frames, publisher,
    *, stats, backend, hang_timeout, resume_at)`` runs one FFmpeg; ``screen(device, options,
    settings, stream, *, session_id, inherited)`` makes a screen's watcher; ``publisher(...)``
    the session's segment store."""

    render: Callable[..., Awaitable[None]] = run_renderer
    browser: Callable[[dict], Browser] = Browser
    encode: Callable[..., Awaitable[None]] = run_encoder
    screen: Callable[..., Any] = CastWatcher
    publisher: Callable[..., Publisher] = Publisher


REAL_PARTS = Parts()


class Session:
    """One render and its screens. Its state is ``state`` alone; its supervisor is the only
    caller of :meth:`stop`, :meth:`add_screen` and :meth:`hand_over`."""

    def __init__(
        self, request: StartRequest, settings: Settings, *, devices: Sequence[Device] = (),
        base_url: Callable[[], str] = lambda: "", inherited: dict[str, Handover] | None = None,
        encoders: EncoderChoice | None = None, parts: Parts = REAL_PARTS,
    ):
        self.id = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")  # ~94 random bits: stream URLs are open
        self.request = request
        self.settings = settings
        self.parts = parts
        self.base_url = base_url
        self.screens: list[Screen] = []
        #: Started without a TV: it streams on when its last screen leaves.
        self.stream_only = not devices
        self._first_devices = list(devices)
        self._inherited = dict(inherited or {})
        self._nursery: trio.Nursery | None = None
        #: Set once it holds its first TVs and renders (or ended before): TVs may join then.
        self.running = trio.Event()
        self._state = State.STARTING
        self._changed = trio.Event()
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.started_at = time.time()
        self.live_at: float | None = None
        self.ended_at: float | None = None
        self.history = History(self.id)
        self.thumbnails = Thumbnails(settings.ffmpeg, rotate=request.quality.rotate)
        self.publisher = parts.publisher(
            segment_duration=self.segment_duration,
            window=settings.playlist_window,
            hold_back=hold_back_for(settings.hold_back, self.segment_duration),
        )
        self.render_stats: dict[str, Any] = {}
        child = {"session_id": self.id, "settings": settings, "parts": parts, "history": self.history}
        self.renderers = Renderers(**child, stats=self.render_stats)
        self.encoding = Encoding(
            **child, encoders=encoders if encoders is not None else EncoderChoice.unprobed(LIBX264),
            publisher=self.publisher, mode=request.mode,
        )
        self.encoder_stats = self.encoding.stats
        self.cancel_scope = trio.CancelScope()
        self._encoder_control: trio.MemorySendChannel | None = None  # a clone of the frames channel, for Dense
        self._start_monotonic = trio.current_time()
        self.startup_seconds: float | None = None

    def figures(self) -> SessionFigures:
        """What this session counts, for /metrics (``core.tally``)."""
        w = self.watcher
        stops = [s.watcher.device_stop for s in self.screens if s.watcher.device_stop]
        outcome = None
        if self.state.ended:
            outcome = "failed" if self._state is State.FAILED else "stopped"
        return SessionFigures(
            frames_captured=self.render_stats.get("frames_captured", 0),
            frames_encoded=self.encoder_stats.frames_out,
            frames_repeated=self.encoder_stats.repeats,
            frames_dropped=self.render_stats.get("frames_dropped", 0),
            restarts=tuple((child, kind, n) for (child, kind), n in sorted(self.history.kinds.items())),
            startup_seconds=self.startup_seconds,
            playing_seconds=w.seconds_to_playing if w is not None else None,
            cast_reconnects=sum(s.watcher.reconnects for s in self.screens),
            device_stop=device_stop_kind(stops[-1]) if stops else None,
            outcome=outcome,
            screens=tuple(ScreenFigures.of(s.watcher.status()) for s in self.screens),
        )

    def child_pids(self) -> dict[str, int | None]:
        """The running Chromium's and FFmpeg's pids (their process trees' roots), for /metrics."""
        facts = self.renderers.facts()
        return {"chromium": facts.pid if facts is not None else None, "ffmpeg": self.encoder_stats.pid}

    def picture(self) -> Frame | None:
        """The newest picture in the stream; None before the first and once the session ended."""
        return self.renderers.picture() if not self.state.ended else None

    @property
    def restarts(self) -> dict[str, int]:
        return self.history.restarts

    @property
    def recycles(self) -> int:
        return self.history.recycles

    @property
    def recycle_failures(self) -> int:
        return self.history.recycle_failures

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def _move(self, wanted: State) -> None:
        new = move(self._state, wanted)
        if new is not self._state:
            self._state = new
            self._changed.set()
            self._changed = trio.Event()

    async def _until(self, done: Callable[[], bool]) -> None:
        while not done():
            await self._changed.wait()

    async def wait_ended(self) -> None:
        await self._until(lambda: self._state.ended)

    async def wait_ready(self) -> None:
        """Until the stream is live and, when casting, playing on the TV; or the session ended."""
        await self._until(lambda: self._state.ended or (self._state is State.LIVE and self._screens_settled))

    @property
    def active(self) -> bool:
        return self._state.active

    @property
    def segment_duration(self) -> float:
        """A progressive viewer starts at the latest keyframe: in ``fmp4`` mode keyframes come
        every FMP4_KEYFRAME_INTERVAL so that the start is never older than that."""
        q = self.request.quality
        return min(q.segment_duration, FMP4_KEYFRAME_INTERVAL) if self.request.mode == "fmp4" else q.segment_duration

    @property
    def device(self) -> str | None:
        return self.request.device

    # -- screens -------------------------------------------------------------------------

    @property
    def watcher(self):
        """The watcher ``cast`` describes: the first screen still on, else the last to leave."""
        shown = self._shown()
        return shown.watcher if shown is not None else None

    def _shown(self) -> Screen | None:
        on = [s for s in self.screens if s.active]
        return on[0] if on else max(self.screens, key=lambda s: s.ended_at or 0.0, default=None)

    @property
    def target(self) -> Device | None:
        w = self.watcher
        return w.device if w is not None else None

    @property
    def joinable(self) -> bool:
        return self._nursery is not None and self.active and not self.cancel_scope.cancel_called

    def active_screens(self) -> list[Screen]:
        return [s for s in self.screens if s.active]

    def screen_on(self, uuid: str) -> Screen | None:
        return next((s for s in self.screens if s.active and s.uuid == uuid), None)

    def remove_screen(self, uuid: str, reason: str) -> Screen | None:
        """Take a TV off this session (its TV is given back); the session ends if it was the
        last one, unless the session streams on its own."""
        screen = self.screen_on(uuid)
        if screen is not None:
            screen.leave(reason)
        return screen

    async def add_screen(
        self, device: Device, options: CastOptions, duration: float | None, inherited: Handover | None = None,
    ) -> Screen:
        """A TV joins the running render. Returns once the TV is connected and free: an
        unreachable or busy TV raises the Refused error of a /start and leaves the session as it was."""
        if not self.joinable:
            raise Conflict(f"session {self.id} is ending; start a new one")
        watcher = self.parts.screen(device, options, self.settings, self._stream(), session_id=self.id, inherited=inherited)
        screen = Screen(watcher, duration)
        self.screens.append(screen)
        try:
            await self._nursery.start(self._run_screen, screen, name=f"screen {device.name}")
        except BaseException:
            self.screens.remove(screen)
            raise
        self._poke()
        return screen

    @property
    def _screens_settled(self) -> bool:
        """Every screen plays or has left; and if none is left, the session is on its way out
        (or streams on its own): its ending is the answer, not a moment before it."""
        settled = all(s.watcher.playing.is_set() or not s.active for s in self.screens)
        return settled and (self.stream_only or bool(self.active_screens()))

    def _stream(self) -> Stream:
        return Stream.for_session(self.stream_url, self.request.mode, _title(self.request.url))

    async def _run_screen(self, screen: Screen, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """One screen's life. What ends it from the TV ends the session only when it was the
        last one (and the session does not stream on its own): then it is the session's end."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._poke_when_settled, screen)
            try:
                await screen.run(self._until_live, task_status=task_status)
            except (DeviceEnded, CastError) as exc:
                if self._last_screen_left():
                    raise
                log.info("session %s: %s left: %s", self.id, screen.device.name, exc)
            else:
                if self._last_screen_left():
                    self.stop(screen.ended or "its last screen left")
            finally:
                self._poke()

    async def _poke_when_settled(self, screen: Screen) -> None:
        await screen.settled()
        self._poke()

    def _last_screen_left(self) -> bool:
        return not self.stream_only and not self.active_screens()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def stream_url(self) -> str:
        name = "live.mp4" if self.request.mode == "fmp4" else "index.m3u8"
        return f"{self.base_url()}/streams/{self.id}/{name}"

    def new_viewer(self) -> None:
        """A progressive viewer joined: make the next couple of seconds dense (see core.ffmpeg.Dense)."""
        if self._encoder_control is not None:
            try:
                self._encoder_control.send_nowait(Dense())
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # a frame is already waiting, which wakes the encoder just as well

    def stop(self, reason: str) -> None:
        """End the session (the supervisor's call). Whether the TV is given back is its
        watcher's decision: not when the TV ended us, nor when it was handed over."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._move(State.STOPPING)
        self.cancel_scope.cancel()

    def status(self, watch_url: str = "") -> SessionAnswer:
        """The session as /status shows it (``core.views``: this only gathers the facts)."""
        now = trio.current_time()
        ended = self._state.ended
        stats, history = self.encoder_stats, self.history
        screens = {id(s): s.status() for s in self.screens}
        shown = self._shown()
        return session_answer(
            id=self.id, state=str(self._state), request=self.request.public(),
            started_at=self.started_at, live_at=self.live_at, ended_at=self.ended_at, startup_seconds=self.startup_seconds,
            stop_reason=self.stop_reason, error=self.error,
            frames=FramesAnswer(
                captured=self.render_stats.get("frames_captured", 0), dropped=self.render_stats.get("frames_dropped", 0),
                encoded=stats.frames_out, repeated=stats.repeats,
            ),
            restarts=history.restarts, last_restart=history.last_restart, restart_log=list(history.log),
            renderer=renderer_child(
                ended=ended, state=self.renderers.state, chromium=self.renderers.facts(), now=now, restarts=history.restarts["renderer"],
                recycles=history.recycles, recycle_failures=history.recycle_failures, last_recycle=history.last_recycle,
            ),
            encoder=encoder_child(
                ended=ended, state=self.encoding.state, pid=stats.pid, backend=self.encoding.backend,
                restarts=history.restarts["encoder"], output_at=stats.output_at, now=now,
            ),
            encoder_info=encoder_answer(self.encoding.backend, self.encoding.fallback),
            pipeline_latency_ms=stats.latency_ms(), publisher=self.publisher.stats,
            screens=list(screens.values()), shown=screens[id(shown)] if shown is not None else None,
            stream_url=self.stream_url, watch_url=watch_url,
        )

    # -- the actor -----------------------------------------------------------------------

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Runs until stopped, its duration ends, a part fails or the TV ends it.

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
            frame_timeout=self.settings.renderer_hang_timeout,
            appearance=req.appearance,
            capture_fps=req.capture_fps,
        )
        log.info("session %s starting: %s (%s, %s)", self.id, redact_url(req.url), q.name, req.mode)
        started = False
        try:
            with self.cancel_scope:
                if req.duration is not None and self.stream_only:
                    self.cancel_scope.deadline = trio.current_time() + req.duration
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for device in self._first_devices:
                        # Each TV's duration is its own: a session lives while a screen does.
                        await self.add_screen(device, req.cast, req.duration, self._inherited.get(device.uuid))
                    task_status.started()
                    self.running.set()
                    started = True
                    frames_send, frames_recv = trio.open_memory_channel(2)
                    self._encoder_control = frames_send.clone()
                    nursery.start_soon(self.encoding.run, self._encode_spec(), frames_recv)
                    await nursery.start(self.renderers.run, page, frames_send)
                    if req.mode == "fmp4":
                        await self.publisher.wait_keyframe()
                    else:
                        await self.publisher.wait_live()
                    if self._state is State.STARTING:
                        self.live_at = time.time()
                        self.startup_seconds = round(trio.current_time() - self._start_monotonic, 3)
                        self._move(State.LIVE)
                        log.info("session %s live after %.2f s", self.id, self.startup_seconds)
            if self.stop_reason is None and req.duration is not None and self.cancel_scope.cancelled_caught:
                self.stop_reason = f"duration of {req.duration:g} s ended"
            if not started:
                # Stopped (a /stop, a newer /start for the TV, shutdown) while it was connecting.
                raise Conflict(f"the session was stopped before it started: {self.stop_reason or 'cancelled'}")
        except BaseException as exc:
            self._ended_by(exc)
        finally:
            self._nursery = None
            self.running.set()
            if self._encoder_control is not None:
                self._encoder_control.close()
            self.publisher.end()
            self.publisher.release()  # the TV is given back by now; the record stays, the video goes
            self._encoder_control = None
            self.renderers.release()  # and its last picture with it
            self.ended_at = time.time()
            self._move(State.STOPPED)
            log.info("session %s %s%s", self.id, self._state, f": {self.error or self.stop_reason}" if (self.error or self.stop_reason) else "")

    def _ended_by(self, exc: BaseException) -> None:
        """Record why the session ended (``core.supervision.ending``) and re-raise what is not
        ours to swallow: a refusal before it started (the /start's answer) and cancellation."""
        leaves = flatten(exc)
        end = ending(leaves)
        if end.bug is not None:
            log.error("session %s crashed", self.id, exc_info=end.bug)
        if end.outcome in ("failed", "refused"):
            self._fail(end.message)
        elif end.message is not None:
            self.stop_reason = self.stop_reason or end.message
        if end.outcome == "refused":
            raise next(e for e in leaves if isinstance(e, Refused)) from None
        if end.reraise:
            raise exc

    def _fail(self, message: str) -> None:
        if self._state is State.FAILED:
            return
        self.error = message
        self.stop_reason = self.stop_reason or "failed"
        self._move(State.FAILED)
        log.warning("session %s failed: %s", self.id, message)

    async def _until_live(self) -> None:
        await self._until(lambda: self._state is not State.STARTING)

    def _encode_spec(self) -> EncodeSpec:
        q = self.request.quality
        return EncodeSpec(
            width=q.output[0], height=q.output[1], rotate=q.rotate, fps=q.fps, bitrate_kbps=q.bitrate_kbps,
            segment_duration=self.segment_duration, x264_preset=self.settings.x264_preset,
            # FFmpeg muxes audio only as far as the video goes: a progressive viewer of an idle
            # page would get its audio in bursts, one per segment, and stall between them.
            min_fps=FMP4_MIN_FPS if self.request.mode == "fmp4" else 0,
            flush_frames=self.request.mode == "fmp4",
            hw_device=self.settings.vaapi_device,
        )


def _title(url: str) -> str:
    parts = urlsplit(url)
    return f"pagecast: {parts.hostname or ''}{parts.path if parts.path not in ('', '/') else ''}"

