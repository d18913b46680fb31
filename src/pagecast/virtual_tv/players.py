"""Players that really play what a sender LOADs, and report how far they got.

A playback reports ``(position seconds, frames so far)`` whenever it knows more, from the
moment it has the media open; the device turns those samples into LOADING / BUFFERING /
PLAYING / stalls. ``run`` returns when the stream ends
and raises :class:`PlayerError` when it fails; cancelling it stops the player and its
processes (both kinds run as owned children: :func:`pagecast.proc.open_child`).

* ``ffmpeg``: FFmpeg reads the URL in real time (``-re``), decodes, discards; its
  ``-progress`` output says how far it got. It joins a live HLS stream its HOLD-BACK behind
  the live edge, as a receiver's engine does (:mod:`.hls`). Light enough for tests; knows
  nothing of CORS or of what a Cast device's own player accepts.
* ``shaka``: Shaka Player, the engine of Cast web receivers, in a headless Chromium, on a
  receiver page the device serves itself; read over DevTools.
"""

from __future__ import annotations

import json
import logging
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable

import trio

from ..lowlevel.browser import open_player_browser
from ..lowlevel.cdp import CdpException
from ..lowlevel.proc import Child, LineTail, StopPolicy, open_child, pump_lines
from .hls import live_join
from .status import (
    HLS_MANIFEST_PLAYLIST,
    HLS_NETWORK_MASTER_PLAYLIST,
    MEDIA_DECODE,
    MEDIA_NETWORK,
    MEDIA_SRC_NOT_SUPPORTED,
    MEDIA_UNKNOWN,
    SEGMENT_NETWORK,
)

log = logging.getLogger(__name__)

Report = Callable[[float, int], None]

PLAYERS = ("ffmpeg", "shaka")
#: Like a receiver's network stack, give up on a source that sends nothing for this long.
READ_TIMEOUT_S = 15
SHAKA_POLL_S = 0.25


HLS_TYPES = ("application/x-mpegurl", "application/vnd.apple.mpegurl", "audio/mpegurl", "audio/x-mpegurl")


def is_hls(content_type: str | None, url: str = "") -> bool:
    return (content_type or "").lower() in HLS_TYPES or url.split("?")[0].lower().endswith(".m3u8")


class PlayerError(Exception):
    """The player gave up; ``detailed_error_code`` is the Web Receiver's code for why."""

    def __init__(self, message: str, detailed_error_code: int):
        super().__init__(message)
        self.detailed_error_code = detailed_error_code


class Playback(ABC):
    """One media item being played."""

    @abstractmethod
    async def run(self, report: Report) -> None: ...

    @abstractmethod
    def pause(self) -> None: ...

    @abstractmethod
    def resume(self) -> None: ...

    @abstractmethod
    def seek(self, position: float) -> None: ...


def _error_code(hls: bool, started: bool, network: bool, decode: bool = False) -> int:
    if network:
        if hls:
            return SEGMENT_NETWORK if started else HLS_NETWORK_MASTER_PLAYLIST
        return MEDIA_NETWORK
    if decode or started:
        return MEDIA_DECODE
    return MEDIA_SRC_NOT_SUPPORTED


NETWORK_WORDS = ("server returned", "http error", "connection refused", "connection reset", "timed out", "timeout", "network is unreachable", "no route")


class FfmpegPlayback(Playback):
    """FFmpeg as the player: paused with SIGSTOP (its clock stops with it), seeks by restarting.
    A pause before FFmpeg has shown anything waits for its first report, so that a LOAD with
    ``autoplay: false`` still loads, as a receiver's player does."""

    def __init__(self, ffmpeg: str, url: str, content_type: str | None, start: float | None = None):
        self._ffmpeg = ffmpeg
        self._url = url
        self._hls = is_hls(content_type, url)
        self._offset = max(0.0, start or 0.0)
        self._paused = False
        self._child: Child | None = None
        self._opened = False
        self._restart: trio.CancelScope | None = None
        self.started = False

    def argv(self, offset: float, segments_back: int | None = None) -> list[str]:
        seek = ["-ss", f"{offset:.3f}"] if offset > 0 else []
        join = ["-live_start_index", str(-segments_back)] if segments_back else []
        return [
            self._ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
            "-rw_timeout", str(READ_TIMEOUT_S * 1_000_000),
            # FFmpeg would read 5 s of media (at -re pace: 5 s of wall time) to probe streams
            # whose codec parameters the fMP4 init segment already names.
            "-analyzeduration", "500000", "-probesize", "500000",
            "-re", "-threads", "1", *seek, *join, "-i", self._url,
            "-map", "0:v:0?", "-map", "0:a:0?", "-f", "null", "-",
            "-progress", "pipe:1", "-stats_period", "0.5",
        ]

    async def run(self, report: Report) -> None:
        while True:
            with trio.CancelScope() as self._restart:
                await self._run_once(report)
                return

    def pause(self) -> None:
        self._paused = True
        if self._child is not None and self._opened:
            self._child.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._paused = False
        if self._child is not None:
            self._child.signal_group(signal.SIGCONT)

    def seek(self, position: float) -> None:
        self._offset = max(0.0, position)
        if self._restart is not None:
            self._restart.cancel()

    async def _run_once(self, report: Report) -> None:
        offset = self._offset
        back = await live_join(self._url, give_up=READ_TIMEOUT_S) if self._hls and offset == 0 else None
        tail = LineTail(keep=20)
        async with open_child(self.argv(offset, back), name="tv-ffmpeg", stdout=True, stderr=True, polite=_wake_and_term, policy=StopPolicy(1.0, 2.0)) as child:
            self._child, self._opened = child, False
            try:
                assert child.stdout is not None and child.stderr is not None
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pump_lines, child.stderr, tail, lambda line: log.debug("ffmpeg: %s", line))
                    await self._follow_progress(child.stdout, offset, report)
                rc = await child.wait()
            finally:
                self._child = None
        if rc != 0:
            text = tail.text().lower()
            network = any(word in text for word in NETWORK_WORDS)
            reason = tail.lines[-1] if tail.lines else f"FFmpeg exited with status {rc}"
            raise PlayerError(reason, _error_code(self._hls, self.started, network))

    async def _follow_progress(self, stdout: trio.abc.ReceiveStream, offset: float, report: Report) -> None:
        fields: dict[str, str] = {}

        def on_line(line: str) -> None:
            key, _, value = line.partition("=")
            if key.strip() != "progress":
                fields[key.strip()] = value.strip()
                return
            try:
                position = offset + int(fields.get("out_time_us", "")) / 1e6
                frames = int(fields.get("frame", "0"))
            except ValueError:
                return
            if frames > 0 or position > offset:
                self.started = True
            report(position, frames)
            if not self._opened:
                self._opened = True
                if self._paused and self._child is not None:
                    self._child.signal_group(signal.SIGSTOP)

        await pump_lines(stdout, LineTail(keep=2), on_line)


async def _wake_and_term(child: Child) -> None:
    """A SIGSTOPped FFmpeg acts on no signal but KILL: continue it, then ask it to end."""
    child.signal_group(signal.SIGCONT)
    child.signal_group(signal.SIGTERM)


class ShakaPlayback(Playback):
    """Shaka Player in headless Chromium, on the device's receiver page (``receiver.html``)."""

    def __init__(self, page_url: str, url: str, content_type: str | None, chromium: str | None = None):
        self._page_url = page_url
        self._hls = is_hls(content_type, url)
        self._chromium = chromium
        self._commands: list[str] = []
        self._wake = trio.Event()
        self.started = False

    def pause(self) -> None:
        self._command("receiver.pause()")

    def resume(self) -> None:
        self._command("receiver.play()")

    def seek(self, position: float) -> None:
        self._command(f"receiver.seek({float(position)!r})")

    def _command(self, js: str) -> None:
        self._commands.append(js)
        self._wake.set()

    async def run(self, report: Report) -> None:
        async with open_player_browser(self._chromium) as browser:
            tab = await browser.open(self._page_url)
            while True:
                try:
                    while self._commands:
                        await tab.evaluate(self._commands[0])
                        self._commands.pop(0)
                    raw = await tab.evaluate("window.receiver ? JSON.stringify(window.receiver.stats) : null")
                except (CdpException, RuntimeError) as exc:
                    log.debug("receiver page not ready: %s", exc)
                    raw = None
                stats = json.loads(raw) if raw else {}
                if stats.get("error"):
                    raise self._error(stats["error"])
                if stats.get("loaded"):
                    if stats.get("frames") or stats.get("playing"):
                        self.started = True
                    report(float(stats.get("currentTime") or 0.0), int(stats.get("frames") or 0))
                    if stats.get("ended"):
                        return
                with trio.move_on_after(SHAKA_POLL_S):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _error(self, error: dict) -> PlayerError:
        """Shaka's error categories (1 network, 3 media, 4 manifest) or a media element error."""
        code = int(error.get("code") or 0)
        message = str(error.get("message") or f"Shaka error {code}")
        if error.get("source") == "video":
            detail = {2: MEDIA_NETWORK, 3: MEDIA_DECODE, 4: MEDIA_SRC_NOT_SUPPORTED}.get(code, MEDIA_UNKNOWN)
        elif 1000 <= code < 2000:
            detail = _error_code(self._hls, self.started, network=True)
        elif 3000 <= code < 4000:
            detail = _error_code(self._hls, self.started, network=False, decode=True)
        elif 4000 <= code < 5000:
            detail = HLS_MANIFEST_PLAYLIST if self._hls else MEDIA_SRC_NOT_SUPPORTED
        else:
            detail = MEDIA_UNKNOWN
        return PlayerError(message, detail)
