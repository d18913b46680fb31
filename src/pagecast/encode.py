"""FFmpeg as the encoder: sparse JPEG frames in, fragmented MP4 (H.264 + silent AAC) out.

Frames arrive only when the page changed. They are handed to FFmpeg in an IVF container
(a 32-byte header, then per frame a 12-byte header with its own timestamp), which lets
FFmpeg encode a variable frame rate: an idle dashboard costs one frame per segment, not
thirty per second. To keep a steady cadence for players, the last frame is repeated at
every segment boundary, where FFmpeg places a keyframe, so every segment starts with one.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from dataclasses import dataclass, field

import trio

from .proc import Child, LineTail, StopPolicy, open_child, pump_lines

log = logging.getLogger(__name__)


class EncodeError(Exception):
    """The encoder failed; the message carries FFmpeg's last words."""


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

    @property
    def segment_ticks(self) -> int:
        return max(1, round(self.segment_duration * self.fps))


def ivf_header(width: int, height: int, fps: int) -> bytes:
    """IVF file header; the time base is one tick per output frame interval."""
    return b"DKIF" + struct.pack("<HHIHHIIII", 0, 32, int.from_bytes(b"MJPG", "little"), width, height, fps, 1, 0, 0)


def ivf_frame(jpeg: bytes, pts: int) -> bytes:
    return struct.pack("<IQ", len(jpeg), pts) + jpeg


def ffmpeg_args(binary: str, spec: EncodeSpec, frames_fd: int) -> list[str]:
    """The FFmpeg command line; pure so it can be checked without running anything."""
    seg = spec.segment_duration
    args = [
        binary, "-hide_banner", "-nostats", "-loglevel", "info",
        # Video: our IVF stream from a pipe. Reading it as /dev/fd/N (not pipe:N) keeps
        # FFmpeg's stdin free for the polite 'q' stop.
        "-f", "ivf", "-probesize", "32", "-analyzeduration", "0",
        "-i", f"/dev/fd/{frames_fd}",
    ]
    if spec.audio:
        args += ["-re", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
    args += ["-map", "0:v"]
    if spec.audio:
        args += ["-map", "1:a"]
    args += [
        "-vf", f"scale={spec.width}:{spec.height}:out_range=tv,format=yuv420p",
        "-c:v", "libx264", "-preset", spec.x264_preset, "-tune", "stillimage,zerolatency",
        "-profile:v", "high", "-level:v", "4.1" if spec.width * spec.height <= 1920 * 1088 else "5.1",
        "-pix_fmt", "yuv420p",
        "-crf", str(spec.crf), "-maxrate", f"{spec.bitrate_kbps}k", "-bufsize", f"{spec.bitrate_kbps * 2}k",
        "-g", str(spec.fps * 60), "-sc_threshold", "0",
        "-x264-params", "bframes=0:rc-lookahead=0:sync-lookahead=0",
        "-force_key_frames", f"expr:gte(t,n_forced*{seg:g})",
        "-fps_mode", "passthrough", "-r", str(spec.fps),
    ]
    if spec.audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000"]
    args += [
        "-max_interleave_delta", "100000",
        "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration", "100000", "-flush_packets", "1",
        "pipe:1",
    ]
    return args


_LEVELS = [
    (re.compile(r"\b(error|invalid|failed|cannot|could not)\b", re.I), logging.WARNING),
    (re.compile(r"^\s*(frame=|size=|video:|\[libx264 @ \w+\] (frame|mb|final|8x8|coded|i16|i8|i4|ref|kb/s|Weighted))"), logging.DEBUG),
]


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
    extra: dict = field(default_factory=dict)


async def _polite_stop(child: Child) -> None:
    """FFmpeg's own 'q': finish the current fragment and exit."""
    for stream in child.extra_fds.values():
        await stream.aclose()
    if child.stdin is not None:
        await child.stdin.send_all(b"q")
        await child.stdin.aclose()


async def run_encoder(
    spec: EncodeSpec,
    ffmpeg: str,
    frames: trio.MemoryReceiveChannel,
    sink,
    *,
    stats: EncoderStats | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one FFmpeg until cancelled; ``sink.feed(bytes)`` receives its fMP4 output.

    ``frames`` yields objects with ``jpeg`` and ``captured_at`` (``render.Frame``).
    Raises EncodeError if FFmpeg dies on its own. Cancelling stops FFmpeg politely ('q'),
    then SIGTERM, then SIGKILL, and always reaps it.
    """
    stats = stats if stats is not None else EncoderStats()
    tail = LineTail(keep=15)
    async with open_child(
        lambda fds: ffmpeg_args(ffmpeg, spec, frames_fd=fds[0]),
        name="ffmpeg",
        stdin=True,
        stdout=True,
        stderr=True,
        write_fds=1,
        polite=_polite_stop,
        policy=StopPolicy(polite_timeout=2.0, term_timeout=2.0),
    ) as child:
        t0 = trio.current_time()
        stats.started_at = t0
        frames_out = next(iter(child.extra_fds.values()))

        stopping = False

        def on_line(line: str) -> None:
            log.log(classify_stderr(line), "ffmpeg: %s", line)

        async def pump_stderr() -> None:
            assert child.stderr is not None
            with trio.CancelScope(shield=True):  # drained until EOF, so FFmpeg never blocks on it
                await pump_lines(child.stderr, tail, on_line)

        async def read_output() -> None:
            assert child.stdout is not None
            with trio.CancelScope(shield=True):  # drained until EOF, even while we stop FFmpeg
                while True:
                    data = await child.stdout.receive_some(262144)
                    if not data:
                        break
                    stats.bytes_out += len(data)
                    sink.feed(data)
                rc = await child.wait()
            if not stopping:
                raise EncodeError(f"FFmpeg exited with status {rc}: {tail.text()[-1500:] or 'no output'}")

        async def write_frames() -> None:
            seg = spec.segment_ticks
            last_jpeg: bytes | None = None
            last_pts = -1
            try:
                await frames_out.send_all(ivf_header(spec.width, spec.height, spec.fps))
                while True:
                    if last_jpeg is None:
                        frame = await frames.receive()
                    else:
                        boundary = (last_pts // seg + 1) * seg
                        frame = None
                        with trio.move_on_at(t0 + boundary / spec.fps):
                            frame = await frames.receive()
                        if frame is None:
                            await frames_out.send_all(ivf_frame(last_jpeg, boundary))
                            last_pts = boundary
                            stats.repeats += 1
                            stats.frames_out += 1
                            continue
                    stats.frames_in += 1
                    pts = max(last_pts + 1, math.floor((frame.captured_at - t0) * spec.fps + 0.5))
                    await frames_out.send_all(ivf_frame(frame.jpeg, pts))
                    last_jpeg, last_pts = frame.jpeg, pts
                    stats.frames_out += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await trio.sleep_forever()  # FFmpeg is gone; read_output reports why

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_stderr)
            nursery.start_soon(read_output)
            nursery.start_soon(write_frames)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    stopping = True
                    await child.stop(lambda: _polite_stop(child), StopPolicy(polite_timeout=2.0, term_timeout=2.0))
