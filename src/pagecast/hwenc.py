"""H.264 encoder backends: each one's FFmpeg arguments, a real test encode per backend, and
the choice among those that work.

Every backend gives what the software path gives: High profile, level 4.1 (5.1 above
1080p), no B-frames, no frame held back inside the encoder, CRF-like quality capped at the
preset's bitrate, and an IDR keyframe exactly where ``-force_key_frames`` puts one (each
segment boundary) and nowhere else. Only the video-encoder part of the command line
differs; inputs and the fMP4 output are ``encode.ffmpeg_args``'s.

A device node that exists proves nothing (no driver, wrong driver, no permission, an
encoder block without H.264 High), so each candidate is tried with a tiny encode through
its own arguments at startup; ``auto`` takes the best one that worked.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import trio

from .proc import LineTail, StopPolicy, open_child, pump_lines

if TYPE_CHECKING:
    from .encode import EncodeSpec

log = logging.getLogger(__name__)

LIBX264 = "libx264"
NVENC = "h264_nvenc"
QSV = "h264_qsv"
VAAPI = "h264_vaapi"
V4L2M2M = "h264_v4l2m2m"
AUTO_ORDER = (NVENC, QSV, VAAPI, V4L2M2M, LIBX264)  # best first
HARDWARE = (NVENC, QSV, VAAPI, V4L2M2M)
ALIASES = {"x264": LIBX264, "software": LIBX264, "nvenc": NVENC, "qsv": QSV, "vaapi": VAAPI, "v4l2m2m": V4L2M2M}
DEFAULT_VAAPI_DEVICE = "/dev/dri/renderD128"
PROBE_TIMEOUT = 5.0
HW_QUALITY_OFFSET = 2  # hardware quality scales are a little softer than x264's CRF at the same number


def parse_order(value: str) -> tuple[str, ...]:
    """``auto``, one backend, or a comma-separated order; short names (``vaapi``) allowed.
    Raises ValueError naming what is wrong."""
    text = value.strip().lower()
    if text in ("", "auto"):
        return AUTO_ORDER
    out: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name = ALIASES.get(part, part)
        if name not in AUTO_ORDER:
            raise ValueError(f"unknown encoder {part!r}: use auto, or one or more of {', '.join(AUTO_ORDER)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def level(spec: EncodeSpec) -> str:
    return "4.1" if spec.width * spec.height <= 1920 * 1088 else "5.1"


def device_args(backend: str, hw_device: str = DEFAULT_VAAPI_DEVICE) -> list[str]:
    """Global options that open the backend's device (before the inputs)."""
    if backend == VAAPI:
        return ["-init_hw_device", f"vaapi=va:{hw_device}", "-filter_hw_device", "va"]
    if backend == QSV:
        # QSV on Linux sits on a VA-API device: open it on the configured render node, so a
        # machine with two GPUs uses the same one for both.
        return ["-init_hw_device", f"vaapi=va:{hw_device}", "-init_hw_device", "qsv=qs@va", "-filter_hw_device", "qs"]
    if backend == NVENC:
        return ["-init_hw_device", "cuda=cu:0", "-filter_hw_device", "cu"]
    return []


def video_args(backend: str, spec: EncodeSpec) -> list[str]:
    """The video filter and encoder options of ``backend`` for ``spec``: pure, testable."""
    seg = spec.segment_duration
    rate = spec.bitrate_kbps
    scale = f"scale={spec.width}:{spec.height}:out_range=tv"
    keyframes = [
        # No periodic keyframes of the encoder's own: only the forced ones, one per segment.
        "-g", str(spec.fps * 60),
        "-force_key_frames", f"expr:gte(t,n_forced*{seg:g})",
    ]
    quality = str(spec.crf + HW_QUALITY_OFFSET)
    if backend == LIBX264:
        return [
            "-vf", f"{scale},format=yuv420p",
            "-c:v", "libx264", "-preset", spec.x264_preset, "-tune", "stillimage,zerolatency",
            "-profile:v", "high", "-level:v", level(spec), "-pix_fmt", "yuv420p",
            "-crf", str(spec.crf), "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
            "-g", str(spec.fps * 60), "-sc_threshold", "0",
            "-x264-params", "bframes=0:rc-lookahead=0:sync-lookahead=0",
            "-force_key_frames", f"expr:gte(t,n_forced*{seg:g})",
        ]
    if backend == VAAPI:
        return [
            "-vf", f"{scale},format=nv12,hwupload",
            "-c:v", "h264_vaapi", "-profile:v", "high", "-level:v", level(spec).replace(".", ""),
            # Quality with a bitrate target: FFmpeg's automatic mode picks QVBR (quality,
            # capped) where the driver has it (Intel iHD), else constant quality.
            "-global_quality", quality, "-b:v", f"{rate}k", "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
            "-bf", "0", "-async_depth", "1",  # each frame out before the next comes in
            *keyframes,
        ]
    if backend == QSV:
        return [
            "-vf", f"{scale},format=nv12,hwupload=extra_hw_frames=16",
            "-c:v", "h264_qsv", "-preset", "veryfast", "-profile:v", "high", "-level:v", level(spec).replace(".", ""),
            # global_quality with a maxrate above the target bitrate: QVBR (quality, capped).
            "-global_quality", quality, "-b:v", f"{rate * 3 // 4}k", "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
            "-look_ahead", "0", "-bf", "0", "-async_depth", "1", "-forced_idr", "1",
            *keyframes,
        ]
    if backend == NVENC:
        return [
            "-vf", f"{scale},format=nv12,hwupload",
            "-c:v", "h264_nvenc", "-preset", "p4", "-tune", "ll", "-profile:v", "high", "-level:v", level(spec),
            # Constant quality in VBR mode, capped at the preset's bitrate.
            "-rc", "vbr", "-cq", quality, "-b:v", "0", "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
            "-bf", "0", "-rc-lookahead", "0", "-delay", "0", "-zerolatency", "1",
            "-forced-idr", "1", "-no-scenecut", "1",
            *keyframes,
        ]
    if backend == V4L2M2M:
        # Memory-to-memory V4L2 (Raspberry Pi 4): bitrate control only (no quality mode), so
        # the preset's bitrate is the target; the level is the driver's; forced keyframes
        # reach it as V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME.
        return [
            "-vf", f"{scale},format=yuv420p",
            "-c:v", "h264_v4l2m2m", "-profile:v", "100",  # High (no named profiles here)
            "-b:v", f"{rate}k", "-bf", "0",
            *keyframes,
        ]
    raise ValueError(f"unknown encoder backend {backend!r}")


@dataclass(frozen=True)
class ProbeResult:
    """What a backend's test encode showed."""

    backend: str
    ok: bool
    reason: str  # "works", or why not, in words a user can act on
    seconds: float
    detail: str = ""  # FFmpeg's last stderr lines, when it failed

    def public(self) -> dict[str, Any]:
        return asdict(self)


def probe_spec(hw_device: str = DEFAULT_VAAPI_DEVICE) -> EncodeSpec:
    from .encode import EncodeSpec

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


_DRIVER = re.compile(r"Trying to open \S*/(\w+)_drv_video\.so")


def explain(backend: str, stderr: str, problem: str | None = None) -> str:
    """A failed test encode's reason, from the device check and FFmpeg's stderr."""
    if problem:
        return problem
    low = stderr.lower()
    if "permission denied" in low:
        node = re.search(r"(/dev/\S+?)[:\s'\"]", stderr + " ")
        where = node.group(1) if node else "the device"
        group = "video" if backend == V4L2M2M else "render"
        return f"permission denied on {where} — add the user to the {group} group"
    if "unknown encoder" in low:
        return "encoder not in this FFmpeg build"
    if re.search(r"profile.*(not supported|unsupported)|unsupported profile|no usable encoding profile", low):
        return "unsupported profile (H.264 High) on this device"
    if backend in (VAAPI, QSV):
        drivers = _DRIVER.findall(stderr)
        if drivers and ("va_openDriver() returns" in stderr or "failed to initialise" in low or "no va display" in low):
            driver = drivers[-1]
            if driver == "iHD":
                return "VA driver iHD failed to initialise; try LIBVA_DRIVER_NAME=i965 on pre-Broadwell CPUs"
            if driver == "i965":
                return "VA driver i965 failed to initialise; try LIBVA_DRIVER_NAME=iHD on Broadwell and newer CPUs"
            return f"VA driver {driver} failed to initialise"
        if "no va display" in low or "failed to initialise vaapi" in low:
            return "no VA-API driver could open the device"
        if "does not support" in low and "rc mode" in low:
            return "the VA driver has no rate-control mode for these options"
        if backend == QSV and ("mfx session" in low or "mfx" in low):
            return "Intel Media SDK/oneVPL could not open a session (QSV needs an Intel GPU with the iHD driver)"
    if backend == NVENC:
        if "libcuda" in low or "cuinit" in low or "could not dynamically load cuda" in low:
            return "no NVIDIA device/driver (libcuda.so.1 missing)"
        if "no capable devices" in low or "no nvenc capable" in low:
            return "this NVIDIA GPU has no NVENC"
        if "openencodesessionex failed" in low or "out of memory" in low:
            return "NVENC refused a session (driver too old, or the card's session limit reached)"
    if backend == V4L2M2M and ("could not find a valid device" in low or "can't configure encoder" in low):
        return "no V4L2 memory-to-memory H.264 encoder (/dev/video*)"
    return "test encode failed"


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
        working = [b for b in self.order if (r := self.results.get(b)) is not None and r.ok]
        if working:
            self.chosen = working[0]
        else:
            self.chosen = LIBX264
            if self.order != AUTO_ORDER:
                tried = "; ".join(f"{b}: {self._reason(b)}" for b in self.order)
                self.note = f"PAGECAST_ENCODER={self.setting} did not work ({tried}); using libx264"
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
