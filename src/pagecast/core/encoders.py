"""H.264 encoder backends: each one's FFmpeg arguments, how to read a failed test encode, and
the choice among those that worked (the test encodes themselves run in ``session/encoder_probe.py``).

Every backend gives what the software path gives: High profile, level 4.1 (5.1 above
1080p), no B-frames, no frame held back inside the encoder, CRF-like quality capped at the
preset's bitrate, and an IDR keyframe exactly where ``-force_key_frames`` puts one (each
segment boundary) and nowhere else. Only the video-encoder part of the command line
differs; inputs and the fMP4 output are ``ffmpeg.ffmpeg_args``'s.

A device node that exists proves nothing (no driver, wrong driver, no permission, an
encoder block without H.264 High), so at startup each candidate encodes a few frames
through the sessions' own encoder and command; ``auto`` takes the best one that worked.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ffmpeg import EncodeSpec

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


def transpose(rotate: int) -> str:
    """The filter that turns a page laid out for a TV turned ``rotate``° clockwise back for
    the TV: counter-clockwise as far (FFmpeg's transpose 2 is 90° counter-clockwise)."""
    return f"transpose={2 if rotate == 90 else 1}"


def video_args(backend: str, spec: EncodeSpec) -> list[str]:
    """The video filter and encoder options of ``backend`` for ``spec``: pure, testable."""
    seg = spec.segment_duration
    rate = spec.bitrate_kbps
    scale = f"scale={spec.width}:{spec.height}:out_range=tv"
    if spec.rotate:
        scale = f"{transpose(spec.rotate)},{scale}"
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


_DRIVER = re.compile(r"Trying to open \S*/(\w+)_drv_video\.so")


#: A backend's failures known by their words in FFmpeg's stderr (lowercased): any of these
#: words, and what they mean; the first that matches.
_SAYS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    QSV: ((("mfx",), "Intel Media SDK/oneVPL could not open a session (QSV needs an Intel GPU with the iHD driver)"),),
    NVENC: (
        (("libcuda", "cuinit", "could not dynamically load cuda"), "no NVIDIA device/driver (libcuda.so.1 missing)"),
        (("no capable devices", "no nvenc capable"), "this NVIDIA GPU has no NVENC"),
        (("openencodesessionex failed", "out of memory"), "NVENC refused a session (driver too old, or the card's session limit reached)"),
    ),
    V4L2M2M: ((("could not find a valid device", "can't configure encoder"), "no V4L2 memory-to-memory H.264 encoder (/dev/video*)"),),
}


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
    for words, why in _SAYS.get(backend, ()):
        if any(word in low for word in words):
            return why
    return "test encode failed"


def choose(order: tuple[str, ...], results: dict[str, ProbeResult], setting: str) -> tuple[str, str | None]:
    """The backend to use after the test encodes, and a note when a forced choice fell back."""
    working = [b for b in order if (r := results.get(b)) is not None and r.ok]
    if working:
        return working[0], None
    if order == AUTO_ORDER:
        return LIBX264, None
    tried = "; ".join(f"{b}: {results[b].reason if b in results else 'not probed'}" for b in order)
    return LIBX264, f"PAGECAST_ENCODER={setting} did not work ({tried}); using libx264"
