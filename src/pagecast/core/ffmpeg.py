"""The encoder's FFmpeg command and its input format: sparse JPEG frames in, fragmented MP4
(H.264 + silent AAC, copied from ready-made frames) out.

Frames arrive only when the page changed. They are handed to FFmpeg in an IVF container
(a 32-byte header, then per frame a 12-byte header with its own timestamp), which lets
FFmpeg encode a variable frame rate: an idle dashboard costs one frame per segment, not
thirty per second. Which frame goes when (repeats at segment boundaries, where FFmpeg places
a keyframe) is ``cadence.py``'s.
"""

from __future__ import annotations

import logging
import re
import struct
from collections import deque
from dataclasses import dataclass, field

from .encoders import DEFAULT_VAAPI_DEVICE, LIBX264, device_args, transpose, video_args

AUDIO_RATE = 48000
#: Samples in one AAC frame, the unit the silence is written in.
AUDIO_FRAME_SAMPLES = 1024
#: One AAC-LC frame (ADTS, 48 kHz, stereo) of digital silence. The silent track is these
#: frames, copied into the stream as they are: encoding silence cost FFmpeg 2.5 % of a core
#: per session, a third of an idle dashboard's whole encoder.
SILENT_AAC_FRAME = bytes.fromhex("fff14c8001bffc211004608c1c")


@dataclass(frozen=True)
class Dense:
    """Sent among the frames: repeat frames at the full rate for a while.

    Native players (Chromium's, and other FFmpeg-based demuxers) probe about 20 frames
    before they show anything; a progressive viewer that joins gets them within a second
    instead of waiting for that many page changes."""

    seconds: float = 2.0


@dataclass(frozen=True)
class EncodeSpec:
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    segment_duration: float = 1.0
    x264_preset: str = "veryfast"
    crf: int = 23
    audio: bool = True
    min_fps: int = 0  # 0: frames only when the page changed (plus one per segment)
    flush_frames: bool = True  # push each new frame out at once (progressive viewers); HLS needs only segments
    hw_device: str = DEFAULT_VAAPI_DEVICE  # the render node of the VA-API and QSV backends
    rotate: int = 0  # how far the TV is turned clockwise: the picture is turned back (width/height are the video's)

    @property
    def segment_ticks(self) -> int:
        return max(1, round(self.segment_duration * self.fps))


def ivf_header(width: int, height: int, fps: int) -> bytes:
    """IVF file header; the time base is one tick per output frame interval."""
    return b"DKIF" + struct.pack("<HHIHHIIII", 0, 32, int.from_bytes(b"MJPG", "little"), width, height, fps, 1, 0, 0)


def ivf_frame(jpeg: bytes, pts: int) -> bytes:
    return struct.pack("<IQ", len(jpeg), pts) + jpeg


def ffmpeg_args(binary: str, spec: EncodeSpec, frames_fd: int, audio_fd: int | None = None, *, backend: str = LIBX264) -> list[str]:
    """The FFmpeg command line; pure so it can be checked without running anything."""
    args = [
        binary, "-hide_banner", "-nostats", "-loglevel", "info",
        *device_args(backend, spec.hw_device),
        # Video: our IVF stream from a pipe. Reading it as /dev/fd/N (not pipe:N) keeps
        # FFmpeg's stdin free for the polite 'q' stop.
        "-f", "ivf", "-probesize", "32", "-analyzeduration", "0",
        "-i", f"/dev/fd/{frames_fd}",
    ]
    if spec.audio:
        # Silence, written by us in step with the video (see cadence.py), so that audio and
        # video timestamps agree by construction rather than by wall-clock pacing.
        args += ["-f", "aac", "-probesize", "32", "-analyzeduration", "0", "-i", f"/dev/fd/{audio_fd}"]
    args += ["-map", "0:v"]
    if spec.audio:
        args += ["-map", "1:a"]
    # The video encoder's part belongs to the backend (hwenc): device, upload, rate control,
    # profile and keyframes; everything around it is the same for all of them.
    args += video_args(backend, spec)
    args += ["-fps_mode", "passthrough", "-r", str(spec.fps)]
    if spec.audio:
        args += ["-c:a", "copy", "-bsf:a", "aac_adtstoasc"]
    args += [
        # Strict dts order between audio and video: a segment-cutting keyframe waits for
        # the audio before it (which we always write ahead), whatever the CPU load.
        "-max_interleave_delta", "0",
        # delay_moov: the init segment waits for the first packets, because the copied AAC's
        # configuration (which players need to open the track) comes from its first frame.
        "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+delay_moov+default_base_moof",
        "-flush_packets", "1",
        "pipe:1",
    ]
    return args


def thumbnail_args(binary: str, width: int, rotate: int = 0) -> list[str]:
    """FFmpeg scaling one JPEG on stdin to ``width`` pixels wide (even height), a JPEG on stdout;
    turned like the stream for a TV turned ``rotate`` degrees clockwise."""
    turn = f"{transpose(rotate)}," if rotate else ""
    return [
        binary, "-hide_banner", "-loglevel", "error", "-f", "mjpeg", "-i", "pipe:0",
        "-vf", f"{turn}scale={width}:-2", "-frames:v", "1", "-q:v", "5", "-f", "mjpeg", "pipe:1",
    ]


_LEVELS = [
    (re.compile(r"\b(error|invalid|failed|cannot|could not)\b", re.I), logging.WARNING),
    (re.compile(r"^\s*(frame=|size=|video:|\[libx264 @ \w+\] (frame|mb|final|8x8|coded|i16|i8|i4|ref|kb/s|Weighted))"), logging.DEBUG),
]


#: What FFmpeg prints about its streams when it starts: no reason for anything.
BANNER = re.compile(
    r"^\s*(Input #|Output #|Stream #|Stream mapping|Metadata:|encoder\s*:|Side data:|cpb:|Duration:|Press \[q\])"
    r"|^\s{2,}\w+\s*:\s|^\s*(frame=|size=)"
)


def last_words(lines, n: int = 4) -> str:
    """FFmpeg's last words for an error message: its last lines, without the stream banner
    and progress it prints on every run."""
    kept = [line for line in lines if line.strip() and not BANNER.search(line)][-n:]
    return " | ".join(kept) if kept else "no output"


def classify_stderr(line: str) -> int:
    """FFmpeg writes progress with \\r and the rest with \\n; give each line a sensible level."""
    for pattern, level in _LEVELS:
        if pattern.search(line):
            return level
    return logging.DEBUG


@dataclass
class EncoderStats:
    frames_in: int = 0
    frames_out: int = 0
    repeats: int = 0
    bytes_out: int = 0
    started_at: float = 0.0
    #: The running FFmpeg's pid (None between runs) and when it last wrote output (the
    #: encoder's clock): for the session's /status.
    pid: int | None = None
    output_at: float | None = None
    latencies: deque = field(default_factory=lambda: deque(maxlen=300))

    def latency_ms(self) -> dict[str, float] | None:
        """Capture → available to viewers, over the last few hundred frames."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
        return {"p50": pick(0.5), "p95": pick(0.95), "max": round(1000 * ordered[-1], 1)}


