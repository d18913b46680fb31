"""FFmpeg as the encoder actor: sparse JPEG frames in, fragmented MP4 (H.264 + silent AAC) out.

Frames arrive only when the page changed. They are handed to FFmpeg in an IVF container
(see ``core/ffmpeg.py``), which lets FFmpeg encode a variable frame rate: an idle dashboard
costs one frame per segment, not thirty per second. Which frame is due when, and the silence
written ahead of it, is ``core/cadence.py``'s decision; this loop receives, sleeps and writes.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from collections.abc import Callable

import trio

from ..core.cadence import Cadence, resume_point
from ..core.encoders import LIBX264
from ..core.errors import EncodeError
from ..core.ffmpeg import AUDIO_FRAME_SAMPLES, SILENT_AAC_FRAME, Dense, EncoderStats, EncodeSpec, classify_stderr, ffmpeg_args, ivf_frame, ivf_header, last_words
from ..core.policy import Answering
from ..lowlevel.groups import first_leaf
from ..lowlevel.proc import Child, LineTail, StopPolicy, open_child, pump_lines

log = logging.getLogger(__name__)

async def _polite_stop(child: Child) -> None:
    """FFmpeg's own 'q': finish the current fragment and exit."""
    for stream in child.extra_fds.values():
        await stream.aclose()
    if child.stdin is not None:
        await child.stdin.send_all(b"q")
        await child.stdin.aclose()


async def write_frames(
    spec: EncodeSpec,
    frames: trio.MemoryReceiveChannel,
    video: trio.abc.SendStream,
    audio: trio.abc.SendStream | None,
    *,
    stats: EncoderStats,
    captures: deque[float | None],
    resume_at: float | None = None,
) -> None:
    """Hand frames to FFmpeg as the cadence says: each new one with its capture time as its
    timestamp, the last one again whenever a repeat falls due first, silence ahead of each.
    ``resume_at``: where the previous encoder's video ended (see ``cadence.resume_point``).

    ``captures`` gets each written frame's capture time (None for a repeat), for latency.
    Silence is copied AAC, a few bytes a frame: it never fills the audio pipe."""
    frame = await frames.receive()
    while isinstance(frame, Dense):  # nothing to repeat yet
        frame = await frames.receive()
    t0 = stats.started_at = resume_point(frame.captured_at, resume_at)
    step = Cadence.start(spec, t0)
    jpeg, captured_at = frame.jpeg, frame.captured_at
    header = ivf_header(spec.width, spec.height, spec.fps)
    while True:
        if audio is not None and step.silence:
            await audio.send_all(SILENT_AAC_FRAME * (step.silence // AUDIO_FRAME_SAMPLES))
        await video.send_all(header + ivf_frame(jpeg, step.pts))
        header = b""
        captures.append(None if step.repeat else captured_at)
        stats.frames_out += 1
        if step.repeat:
            stats.repeats += 1
        else:
            stats.frames_in += 1
        cadence = step.then
        while True:
            due = cadence.due(trio.current_time())
            frame = None
            with trio.move_on_at(cadence.time_of(due)):
                frame = await frames.receive()
            if not isinstance(frame, Dense):
                break
            cadence = cadence.dense(trio.current_time(), frame.seconds)
        if frame is None:
            step = cadence.repeat(due)
        else:
            step = cadence.frame(frame.captured_at)
            jpeg, captured_at = frame.jpeg, frame.captured_at


class _Encoder:
    """The actor around one FFmpeg: it feeds frames in (``write_frames``), drains its output
    to the sink and its stderr to the log, and tells a hung FFmpeg from a slow one by whether
    it owes output (``core.policy.Answering``)."""

    def __init__(self, spec: EncodeSpec, child: Child, sink, stats: EncoderStats, *, hang_timeout: float,
                 on_stderr: Callable[[str], None] | None, resume_at: float | None):
        self.spec = spec
        self.child = child
        self.sink = sink
        self.stats = stats
        self.hang_timeout = hang_timeout
        self.on_stderr = on_stderr
        self.resume_at = resume_at
        self.tail = LineTail(keep=15)
        self.captures: deque[float | None] = deque(maxlen=4 * spec.fps)
        pipes = list(child.extra_fds.values())
        self.frames_pipe = pipes[0]
        self.audio_pipe = pipes[1] if spec.audio else None
        self.answering = Answering()
        self.stopping = False
        self.hung = False
        self.dated = False  # the publisher was told when the first picture was taken
        self.stderr_done = trio.Event()

    def log_line(self, line: str) -> None:
        log.log(classify_stderr(line), "ffmpeg: %s", line)

    async def pump_stderr(self) -> None:
        assert self.child.stderr is not None
        try:
            with trio.CancelScope(shield=True):  # drained until EOF, so FFmpeg never blocks on it
                await pump_lines(self.child.stderr, self.tail, self.on_stderr or self.log_line)
        finally:
            self.stderr_done.set()

    def _published(self, data: bytes) -> None:
        stats, captures = self.stats, self.captures
        stats.bytes_out += len(data)
        stats.output_at = trio.current_time()
        self.answering = self.answering.answered()
        if not self.dated and captures and captures[0] is not None:
            self.dated = True
            self.sink.first_capture(time.time() - (trio.current_time() - captures[0]))
        published = self.sink.feed(data) or 0
        now = trio.current_time()
        for _ in range(min(published, len(captures))):
            captured = captures.popleft()
            if captured is not None:
                stats.latencies.append(now - captured)

    async def read_output(self) -> None:
        stdout = self.child.stdout
        assert stdout is not None
        with trio.CancelScope(shield=True):  # drained until EOF, even while we stop FFmpeg
            while data := await stdout.receive_some(262144):
                self._published(data)
            rc = await self.child.wait()
        if not self.stopping:
            # Its last words may still be in the stderr pipe when stdout ends: read them first.
            with trio.move_on_after(1):
                await self.stderr_done.wait()
            raise EncodeError(f"FFmpeg exited with status {rc}: {self.tail.text()[-1500:] or 'no output'}")

    async def send_all(self, data: bytes) -> None:
        """The frames pipe: every write is input that FFmpeg owes output for (marked before
        the write, which a stopped FFmpeg never lets finish)."""
        self.answering = self.answering.fed(trio.current_time())
        await self.frames_pipe.send_all(data)

    async def watch_answers(self) -> None:
        while not self.answering.hung(trio.current_time(), self.hang_timeout):
            await trio.sleep(min(0.5, self.hang_timeout / 4))
        self.hung = True
        raise EncodeError(
            f"FFmpeg wrote nothing for {self.hang_timeout:g} s while frames went in (hung); killed; its last words: {last_words(self.tail.lines)}",
            kind="hang",
        )

    async def feed_frames(self, frames: trio.MemoryReceiveChannel) -> None:
        try:
            await write_frames(self.spec, frames, self, self.audio_pipe, stats=self.stats, captures=self.captures, resume_at=self.resume_at)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.sleep_forever()  # FFmpeg is gone; read_output reports why

    async def stop(self) -> None:
        """Politely ('q'), then SIGTERM, then SIGKILL; at once with SIGKILL if it hung."""
        self.stopping = True
        if self.hung:
            self.child.signal_group(signal.SIGKILL)  # a stopped process ignores 'q' and SIGTERM
        try:
            await self.child.stop(lambda: _polite_stop(self.child), StopPolicy(polite_timeout=2.0, term_timeout=2.0))
        finally:
            self.stats.pid = None

    async def run(self, frames: trio.MemoryReceiveChannel, task_status) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.pump_stderr)
            nursery.start_soon(self.read_output)
            nursery.start_soon(self.feed_frames, frames)
            if self.hang_timeout > 0:
                nursery.start_soon(self.watch_answers)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self.stop()


async def run_encoder(
    spec: EncodeSpec,
    ffmpeg: str,
    frames: trio.MemoryReceiveChannel,
    sink,
    *,
    stats: EncoderStats | None = None,
    backend: str = LIBX264,
    on_stderr: Callable[[str], None] | None = None,
    hang_timeout: float = 0.0,
    resume_at: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one FFmpeg until cancelled; ``sink.feed(bytes)`` receives its fMP4 output, and
    ``sink.first_capture(wallclock)`` once, when the first picture was taken.

    ``frames`` yields objects with ``jpeg`` and ``captured_at`` (``core.page.Frame``).
    Raises EncodeError if FFmpeg dies on its own, or (``hang_timeout`` > 0) takes frames for
    that long without writing anything: a hung FFmpeg is killed at once. ``resume_at``
    (Trio's clock): where the encoder this one replaces left the stream, to go on from there.
    Cancelling stops FFmpeg politely ('q'), then SIGTERM, then SIGKILL, and always reaps it. Each stderr line goes to ``on_stderr``
    if given (the startup probe keeps them to explain a failure), else to the log.
    """
    stats = stats if stats is not None else EncoderStats()
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
        stats.pid = child.pid
        encoder = _Encoder(spec, child, sink, stats, hang_timeout=hang_timeout, on_stderr=on_stderr, resume_at=resume_at)
        try:
            await encoder.run(frames, task_status)
        except BaseExceptionGroup as group:
            # FFmpeg's death is one error, not a group: callers restart on EncodeError.
            errors, rest = group.split(EncodeError)
            if errors is not None and rest is None:
                raise first_leaf(errors) from None
            raise
