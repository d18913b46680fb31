"""FFmpeg as the encoder: sparse JPEG frames in, fragmented MP4 (H.264 + silent AAC) out.

Frames arrive only when the page changed. They are handed to FFmpeg in an IVF container
(a 32-byte header, then per frame a 12-byte header with its own timestamp), which lets
FFmpeg encode a variable frame rate: an idle dashboard costs one frame per segment, not
thirty per second. To keep a steady cadence for players, the last frame is repeated at
every segment boundary, where FFmpeg places a keyframe, so every segment starts with one.
"""

from __future__ import annotations

import fcntl
import logging
import math
import re
import struct
from collections import deque
from dataclasses import dataclass, field

import trio

from .groups import first_leaf
from .hwenc import DEFAULT_VAAPI_DEVICE, LIBX264, device_args, video_args
from .proc import Child, LineTail, StopPolicy, open_child, pump_lines

log = logging.getLogger(__name__)


AUDIO_RATE = 48000
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
AUDIO_LEAD = 0.1  # seconds of silence written ahead of the video
AUDIO_PIPE_BYTES = 1 << 20  # > one segment of silence, so writing it ahead never blocks


@dataclass(frozen=True)
class Dense:
    """Sent among the frames: repeat frames at the full rate for a while.

    Native players (Chromium's, and other FFmpeg-based demuxers) probe about 20 frames
    before they show anything; a progressive viewer that joins gets them within a second
    instead of waiting for that many page changes."""

    seconds: float = 2.0


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
    min_fps: int = 0  # 0: frames only when the page changed (plus one per segment)
    flush_frames: bool = True  # push each new frame out at once (progressive viewers); HLS needs only segments
    hw_device: str = DEFAULT_VAAPI_DEVICE  # the render node of the VA-API and QSV backends

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
        # Silence, written by us in step with the video (see write_frames), so that audio and
        # video timestamps agree by construction rather than by wall-clock pacing.
        args += ["-f", "s16le", "-ar", str(AUDIO_RATE), "-ac", "2", "-probesize", "32", "-analyzeduration", "0", "-i", f"/dev/fd/{audio_fd}"]
    args += ["-map", "0:v"]
    if spec.audio:
        args += ["-map", "1:a"]
    # The video encoder's part belongs to the backend (hwenc): device, upload, rate control,
    # profile and keyframes; everything around it is the same for all of them.
    args += video_args(backend, spec)
    args += ["-fps_mode", "passthrough", "-r", str(spec.fps)]
    if spec.audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    args += [
        # Strict dts order between audio and video: a segment-cutting keyframe waits for
        # the audio before it (which we always write ahead), whatever the CPU load.
        "-max_interleave_delta", "0",
        "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+default_base_moof",
        "-flush_packets", "1",
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
    latencies: deque = field(default_factory=lambda: deque(maxlen=300))

    def latency_ms(self) -> dict[str, float] | None:
        """Capture → available to viewers, over the last few hundred frames."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
        return {"p50": pick(0.5), "p95": pick(0.95), "max": round(1000 * ordered[-1], 1)}


def _grow_pipe(fd: int) -> None:
    try:
        limit = int(open("/proc/sys/fs/pipe-max-size").read())
        fcntl.fcntl(fd, F_SETPIPE_SZ, min(AUDIO_PIPE_BYTES, limit))
    except (OSError, ValueError) as exc:
        log.warning("cannot enlarge the audio pipe (%s); audio may lag behind video", exc)


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
    backend: str = LIBX264,
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
        lambda fds: ffmpeg_args(ffmpeg, spec, frames_fd=fds[0], audio_fd=fds[1] if spec.audio else None, backend=backend),
        name="ffmpeg",
        stdin=True,
        stdout=True,
        stderr=True,
        write_fds=2 if spec.audio else 1,
        polite=_polite_stop,
        policy=StopPolicy(polite_timeout=2.0, term_timeout=2.0),
    ) as child:
        captures: deque[float | None] = deque(maxlen=4 * spec.fps)
        pipes = list(child.extra_fds.values())
        frames_out = pipes[0]
        audio_out = pipes[1] if spec.audio else None
        if audio_out is not None:
            _grow_pipe(audio_out.fileno())

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
                    published = sink.feed(data) or 0
                    now = trio.current_time()
                    for _ in range(min(published, len(captures))):
                        captured = captures.popleft()
                        if captured is not None:
                            stats.latencies.append(now - captured)
                rc = await child.wait()
            if not stopping:
                raise EncodeError(f"FFmpeg exited with status {rc}: {tail.text()[-1500:] or 'no output'}")

        async def write_frames() -> None:
            """Hand frames to FFmpeg with their capture times as timestamps, repeating the last
            one at each segment boundary (a keyframe), one tick after each keyframe and, with
            ``flush_frames``, after each new frame (FFmpeg's MP4 muxer holds a sample until the
            next one gives its duration, and a segment is complete only when the next one's
            keyframe is out), and at the full
            rate for a while after a Dense request. Before each frame, silence is written up to
            AUDIO_LEAD past it: FFmpeg muxes audio only as far as the video goes, so when a
            keyframe cuts a segment every earlier audio sample is there to be muxed before it,
            and audio and video segment boundaries agree (players that trim to the segment,
            like Shaka, see no gap). The audio pipe is enlarged so these writes never wait."""
            seg = spec.segment_ticks
            gap = max(1, round(spec.fps / spec.min_fps)) if spec.min_fps else None
            frame = await frames.receive()
            while isinstance(frame, Dense):
                frame = await frames.receive()
            t0 = frame.captured_at
            stats.started_at = t0
            audio_samples = 0

            async def silence_until(seconds: float) -> None:
                nonlocal audio_samples
                target = int(seconds * AUDIO_RATE)
                if audio_out is not None and target > audio_samples:
                    await audio_out.send_all(bytes(4 * (target - audio_samples)))
                    audio_samples = target

            last_jpeg, last_pts = frame.jpeg, 0
            pending = True  # the last frame sits in the MP4 muxer until another video frame follows
            try:
                await silence_until(AUDIO_LEAD)
                await frames_out.send_all(ivf_header(spec.width, spec.height, spec.fps) + ivf_frame(frame.jpeg, 0))
                captures.append(frame.captured_at)
                stats.frames_in += 1
                stats.frames_out += 1
                dense_until = 0.0
                while True:
                    due = (last_pts // seg + 1) * seg
                    if gap is not None:
                        due = min(due, last_pts + gap)
                    if pending or trio.current_time() < dense_until:
                        due = min(due, last_pts + 1)
                    due_at = t0 + due / spec.fps
                    frame = None
                    with trio.move_on_at(due_at):
                        frame = await frames.receive()
                    if isinstance(frame, Dense):
                        dense_until = max(dense_until, trio.current_time() + frame.seconds)
                        continue
                    if frame is None:
                        # A repeat: a segment boundary, the tick after a new frame, or dense.
                        pending = due % seg == 0
                        await silence_until(due / spec.fps + AUDIO_LEAD)
                        await frames_out.send_all(ivf_frame(last_jpeg, due))
                        captures.append(None)
                        last_pts = due
                        stats.repeats += 1
                        stats.frames_out += 1
                        continue
                    stats.frames_in += 1
                    pts = max(last_pts + 1, math.floor((frame.captured_at - t0) * spec.fps + 0.5))
                    await silence_until(pts / spec.fps + AUDIO_LEAD)
                    await frames_out.send_all(ivf_frame(frame.jpeg, pts))
                    captures.append(frame.captured_at)
                    last_jpeg, last_pts = frame.jpeg, pts
                    pending = spec.flush_frames
                    stats.frames_out += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await trio.sleep_forever()  # FFmpeg is gone; read_output reports why

        try:
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
        except BaseExceptionGroup as group:
            # FFmpeg's death is one error, not a group: callers restart on EncodeError.
            errors, rest = group.split(EncodeError)
            if errors is not None and rest is None:
                raise first_leaf(errors) from None
            raise
