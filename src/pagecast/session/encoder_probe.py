"""The startup test encode of each H.264 backend, and the service's choice among them.

A device node that exists proves nothing (no driver, wrong driver, no permission, an encoder
block without H.264 High), so each candidate encodes a few frames through the sessions' own
encoder (``run_encoder``: the same FFmpeg command, smaller) at startup; ``auto`` takes the best
one that worked.
"""

from __future__ import annotations

import base64
import glob
import logging
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..core.encoders import AUTO_ORDER, DEFAULT_VAAPI_DEVICE, LIBX264, NVENC, PROBE_TIMEOUT, QSV, V4L2M2M, VAAPI, ProbeResult, choose, explain, parse_order
from ..core.errors import EncodeError
from ..core.ffmpeg import EncodeSpec
from ..lowlevel.groups import first_leaf
from ..lowlevel.proc import open_child
from .encode import run_encoder

log = logging.getLogger(__name__)


def device_problem(backend: str, hw_device: str = DEFAULT_VAAPI_DEVICE) -> str | None:
    """What is visibly missing for ``backend`` on this machine (its device nodes), if anything."""
    if backend in (VAAPI, QSV):
        if not os.path.exists(hw_device):
            return f"no {hw_device}"
        if not os.access(hw_device, os.R_OK | os.W_OK):
            return f"permission denied on {hw_device} — add the user to the render group"
    elif backend == NVENC:
        if not glob.glob("/dev/nvidia[0-9]*") or not os.path.exists("/dev/nvidiactl"):
            return "no NVIDIA device/driver (/dev/nvidia0, /dev/nvidiactl)"
    elif backend == V4L2M2M:
        nodes = sorted(glob.glob("/dev/video*"))
        if not nodes:
            return "no /dev/video* device (V4L2 memory-to-memory encoder)"
        if not any(os.access(n, os.R_OK | os.W_OK) for n in nodes):
            return f"permission denied on {', '.join(nodes)} — add the user to the video group"
    return None


def probe_spec(hw_device: str = DEFAULT_VAAPI_DEVICE) -> EncodeSpec:
    return EncodeSpec(width=320, height=240, fps=10, bitrate_kbps=500, segment_duration=0.5, x264_preset="ultrafast", hw_device=hw_device)


#: The probe's frame: a flat grey 320×240 JPEG, byte for byte what FFmpeg 5.1's ``ffmpeg -f lavfi
#: -i color=gray:s=320x240 -frames:v 1 -f mjpeg pipe:1`` writes: its headers, then two zero
#: bits per 8×8 block (no change, end of block). Embedded rather than made at startup: one
#: process and one way to fail fewer, and the same test frames on every machine.
PROBE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcI"
    "CAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAA"
    "AAAAEAEAAAAAAAAAAAAAAAAAAAAAEQEAAAAAAAAAAAAAAAAAAAAA/8AAEQgA8AFAAwEiAAIRAAMRAP/aAAwDAQACEQMRAD8A"
) + bytes(450) + b"\xff\xd9"


@dataclass(frozen=True)
class _Frame:
    """What ``run_encoder`` reads of a ``core.page.Frame``."""

    jpeg: bytes
    captured_at: float


class _Output:
    """The test encode's fMP4 (its first MiB is plenty to find the boxes in)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, data: bytes) -> None:
        if len(self.data) < 1 << 20:
            self.data += data

    def first_capture(self, wallclock: float) -> None:
        pass


async def _send_frames(frames: trio.MemorySendChannel, spec: EncodeSpec) -> None:
    """A frame per tick, captured on Trio's clock as the renderer's are, for one segment and
    the next one's first frame (a keyframe, which completes the first segment)."""
    start = trio.current_time()
    for i in range(spec.segment_ticks + 1):
        await frames.send(_Frame(PROBE_JPEG, start + i / spec.fps))
        await trio.sleep_until(start + (i + 1) / spec.fps)


async def build_encoders(ffmpeg: str) -> set[str] | None:
    """The encoders ``ffmpeg -encoders`` lists; None if that could not be asked."""
    out = bytearray()
    try:
        async with open_child([ffmpeg, "-hide_banner", "-nostdin", "-encoders"], name="ffmpeg -encoders", stdout=True, stderr=False) as child:
            assert child.stdout is not None
            with trio.move_on_after(PROBE_TIMEOUT):
                while data := await child.stdout.receive_some(65536):
                    out += data
                await child.wait()
    except OSError as exc:
        log.warning("cannot list FFmpeg's encoders: %s", exc)
        return None
    names = {m.group(1).decode() for m in re.finditer(rb"^ V\S{5} (\S+)", bytes(out), re.M)}
    return names or None


async def probe(ffmpeg: str, backend: str, hw_device: str = DEFAULT_VAAPI_DEVICE, *, timeout: float = PROBE_TIMEOUT, available: set[str] | None = None) -> ProbeResult:
    """One real test encode through the sessions' own encoder (``run_encoder``) with
    ``backend``, stopped as a session stops it; never raises for its failure."""
    t0 = time.monotonic()

    def result(ok: bool, reason: str, detail: str = "") -> ProbeResult:
        return ProbeResult(backend, ok, reason, round(time.monotonic() - t0, 3), detail)

    if available is not None and backend not in available:
        return result(False, "encoder not in this FFmpeg build")
    spec = probe_spec(hw_device)
    output = _Output()
    stderr: deque[str] = deque(maxlen=15)

    def keep(line: str) -> None:
        stderr.append(line)
        log.debug("ffmpeg probe %s: %s", backend, line)

    failure: BaseException | None = None
    with trio.move_on_after(timeout) as deadline:
        try:
            async with trio.open_nursery() as nursery:
                send, receive = trio.open_memory_channel(0)
                await nursery.start(partial(run_encoder, spec, ffmpeg, receive, output, backend=backend, on_stderr=keep))
                await _send_frames(send, spec)
                nursery.cancel_scope.cancel()
        except* (EncodeError, OSError) as group:
            failure = first_leaf(group)
    detail = "\n".join(stderr)
    if isinstance(failure, OSError):
        return result(False, f"cannot run FFmpeg: {failure}")
    if failure is not None:
        return result(False, explain(backend, detail, device_problem(backend, hw_device)), detail)
    if deadline.cancelled_caught:
        return result(False, f"test encode did not finish within {timeout:g} s", detail)
    if b"avcC" in output.data and b"moof" in output.data:
        return result(True, "works")
    if not output.data and detail:
        # FFmpeg failed at once, but the frames were all taken before its exit was seen
        # (a busy machine): its words say why, as when the failure is seen.
        return result(False, explain(backend, detail, device_problem(backend, hw_device)), detail)
    return result(False, "the test encode produced no H.264 fragments (no parameter sets before the first frame?)", detail)


async def probe_all(ffmpeg: str, backends: tuple[str, ...], hw_device: str = DEFAULT_VAAPI_DEVICE, *, timeout: float = PROBE_TIMEOUT) -> dict[str, ProbeResult]:
    """Every backend's test encode, concurrently; results in the order given."""
    available = await build_encoders(ffmpeg)
    results: dict[str, ProbeResult] = {}

    async def one(backend: str) -> None:
        results[backend] = await probe(ffmpeg, backend, hw_device, timeout=timeout, available=available)

    async with trio.open_nursery() as nursery:
        for backend in backends:
            nursery.start_soon(one, backend)
    return {b: results[b] for b in backends}


class EncoderChoice:
    """The service's encoder: probed once at startup, then fixed.

    ``settings.encoder`` is ``auto`` (the best that works, in AUTO_ORDER), one backend (used
    if it works, else libx264 with a warning), or an order to try. Sessions ask
    :meth:`backend`, which waits for the probe (a few seconds at most)."""

    def __init__(self, ffmpeg: str, setting: str = "auto", hw_device: str = DEFAULT_VAAPI_DEVICE, *, timeout: float = PROBE_TIMEOUT):
        self.ffmpeg = ffmpeg
        self.setting = setting
        self.order = parse_order(setting)
        self.hw_device = hw_device
        self.timeout = timeout
        self.results: dict[str, ProbeResult] = {}
        self.chosen: str | None = None
        self.note: str | None = None
        self.probe_seconds: float | None = None
        self.fallbacks = 0  # sessions whose hardware encoder failed and went to software
        self.last_fallback: dict[str, Any] | None = None
        self.done = trio.Event()

    @classmethod
    def from_settings(cls, settings) -> "EncoderChoice":
        return cls(settings.ffmpeg, settings.encoder, settings.vaapi_device)

    @classmethod
    def unprobed(cls, backend: str, hw_device: str = DEFAULT_VAAPI_DEVICE) -> "EncoderChoice":
        """Use ``backend`` without testing it (tests of the mid-session fallback)."""
        choice = cls("ffmpeg", backend, hw_device)
        choice.chosen = backend
        choice.note = f"{backend} set without a probe"
        choice.done.set()
        return choice

    @classmethod
    def probed_like(cls, other: "EncoderChoice") -> "EncoderChoice":
        """A choice made from ``other``'s finished probe of this machine, without probing again
        (a test suite starts a service for each of its tests); its own fallbacks start at none."""
        choice = cls(other.ffmpeg, other.setting, other.hw_device, timeout=other.timeout)
        choice.results, choice.chosen, choice.note, choice.probe_seconds = dict(other.results), other.chosen, other.note, other.probe_seconds
        choice.done.set()
        return choice

    async def run(self) -> None:
        """Probe the candidates (libx264 always among them) and choose; run once at startup."""
        if self.done.is_set():
            return
        candidates = tuple(dict.fromkeys((*self.order, LIBX264)))
        t0 = time.monotonic()
        try:
            self.results = await probe_all(self.ffmpeg, candidates, self.hw_device, timeout=self.timeout)
        except Exception:  # a bug here must cost hardware encoding, not the service
            log.exception("the encoder probe failed; using libx264")
        finally:
            self.probe_seconds = round(time.monotonic() - t0, 3)
            self._choose()
            self.done.set()

    def _choose(self) -> None:
        self.chosen, self.note = choose(self.order, self.results, self.setting)
        if self.note:
            log.warning("%s", self.note)
        for b, r in self.results.items():
            log.info("encoder probe: %s %s (%.2f s)", b, "works" if r.ok else f"fails: {r.reason}", r.seconds)
        if self.chosen == LIBX264 and not self.results.get(LIBX264, ProbeResult(LIBX264, True, "", 0)).ok:
            log.warning("even libx264 failed its test encode: %s", self._reason(LIBX264))
        log.info("encoder: %s", self.chosen)

    def _reason(self, backend: str) -> str:
        r = self.results.get(backend)
        return r.reason if r is not None else "not probed"

    async def backend(self) -> str:
        await self.done.wait()
        return self.chosen or LIBX264

    def record_fallback(self, session_id: str, backend: str, reason: str) -> None:
        self.fallbacks += 1
        self.last_fallback = {"session": session_id, "from": backend, "reason": reason, "at": time.time()}

    def health(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "chosen": self.chosen if self.done.is_set() else None,
            "probing": not self.done.is_set(),
            "note": self.note,
            "probe_seconds": self.probe_seconds,
            "probes": [r.public() for r in self.results.values()],
            "session_fallbacks": self.fallbacks,
            "last_fallback": self.last_fallback,
        }
