"""The startup test encode of each H.264 backend, and the service's choice among them.

A device node that exists proves nothing (no driver, wrong driver, no permission, an encoder
block without H.264 High), so each candidate encodes a few frames through the sessions' own
encoder (``run_encoder``: the same FFmpeg command, smaller) at startup; ``auto`` takes the best
one that worked.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from typing import Any

import trio

from ..core.encoders import (
    AUTO_ORDER, DEFAULT_VAAPI_DEVICE, LIBX264, NVENC, PROBE_TIMEOUT, QSV, V4L2M2M, VAAPI, ProbeResult, choose, device_args, explain, parse_order, video_args,
)
from ..core.ffmpeg import EncodeSpec
from ..lowlevel.proc import LineTail, StopPolicy, open_child, pump_lines

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


def probe_args(ffmpeg: str, backend: str, hw_device: str = DEFAULT_VAAPI_DEVICE) -> list[str]:
    """Half a second of a test pattern through the backend's own arguments, into the same
    fragmented MP4 a session writes, on stdout."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        *device_args(backend, hw_device),
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10", "-t", "0.5",
        *video_args(backend, probe_spec(hw_device)),
        "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+default_base_moof", "pipe:1",
    ]


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
    """One real test encode through ``backend``'s arguments; never raises for its failure."""
    t0 = time.monotonic()

    def result(ok: bool, reason: str, detail: str = "") -> ProbeResult:
        return ProbeResult(backend, ok, reason, round(time.monotonic() - t0, 3), detail)

    if available is not None and backend not in available:
        return result(False, "encoder not in this FFmpeg build")
    tail = LineTail(keep=6)
    out = bytearray()
    try:
        async with open_child(
            probe_args(ffmpeg, backend, hw_device), name=f"ffmpeg probe {backend}", stdout=True, stderr=True,
            policy=StopPolicy(polite_timeout=0, term_timeout=1.0),
        ) as child:
            assert child.stdout is not None and child.stderr is not None

            async def read_stdout() -> None:
                while data := await child.stdout.receive_some(65536):
                    if len(out) < 1 << 20:
                        out.extend(data)

            rc = None
            with trio.move_on_after(timeout):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pump_lines, child.stderr, tail, lambda line: None)
                    nursery.start_soon(read_stdout)
                rc = await child.wait()
    except OSError as exc:
        return result(False, f"cannot run FFmpeg: {exc}")
    detail = tail.text()
    if rc is None:
        return result(False, f"test encode did not finish within {timeout:g} s", detail)
    if rc == 0 and b"avcC" in out and b"moof" in out:
        return result(True, "works")
    if rc == 0:
        return result(False, "the test encode produced no H.264 fragments (no parameter sets before the first frame?)", detail)
    return result(False, explain(backend, detail, device_problem(backend, hw_device)), detail)


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
