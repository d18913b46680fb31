"""FFmpeg as the encoder actor: sparse JPEG frames in, fragmented MP4 (H.264 + silent AAC) out.

Frames arrive only when the page changed. They are handed to FFmpeg in an IVF container
(see ``core/ffmpeg.py``), which lets FFmpeg encode a variable frame rate: an idle dashboard
costs one frame per segment, not thirty per second. To keep a steady cadence for players,
the last frame is repeated at every segment boundary, where FFmpeg places a keyframe, so
every segment starts with one.
"""

from __future__ import annotations

import fcntl
import logging
import math
from collections import deque

import trio

from ..core.encoders import LIBX264
from ..core.errors import EncodeError
from ..core.ffmpeg import AUDIO_LEAD, AUDIO_PIPE_BYTES, AUDIO_RATE, Dense, EncoderStats, EncodeSpec, classify_stderr, ffmpeg_args, ivf_frame, ivf_header
from ..lowlevel.groups import first_leaf
from ..lowlevel.proc import Child, LineTail, StopPolicy, open_child, pump_lines

log = logging.getLogger(__name__)

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


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
