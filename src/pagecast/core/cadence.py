"""The encoder's frame cadence: which frame FFmpeg gets next, with which timestamp, and how
much silence goes before it. Times are arguments (Trio's clock in the encoder, numbers in
the tests), so the cadence is checked by tables, not by waiting.

Frames arrive only when the page changed; FFmpeg encodes a variable frame rate from their
timestamps (one tick per output frame interval, counted from the first frame). Between new
frames the last one is repeated:

* at every segment boundary, where FFmpeg forces a keyframe, so every segment starts with one;
* with ``flush_frames``, one tick after each new frame: FFmpeg's MP4 muxer holds a sample
  until the next one gives its duration;
* one tick after each of the first keyframes: the publisher lists those segments only once
  the next one's keyframe is out; later ones it lists once whole
  (``playlist.LISTED_WHEN_WHOLE_FROM``), so an idle page costs one frame per segment;
* at least every ``fps / min_fps`` ticks, with ``min_fps``;
* at the full rate for a while after a ``Dense`` request.

Before each frame, silence is written up to AUDIO_LEAD past it: FFmpeg muxes audio only as
far as the video goes, so when a keyframe cuts a segment every earlier audio sample is there
to be muxed before it, and audio and video segment boundaries agree (players that trim to
the segment, like Shaka, see no gap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .ffmpeg import AUDIO_FRAME_SAMPLES, AUDIO_RATE, EncodeSpec
from .playlist import LISTED_WHEN_WHOLE_FROM

AUDIO_LEAD = 0.1  # seconds of silence written ahead of the video


#: The longest hole (seconds) a restarted encoder fills with the first picture it gets.
FILL_LIMIT = 30.0


def resume_point(captured_at: float, resume_at: float | None, limit: float = FILL_LIMIT) -> float:
    """Where a new encoder's timeline starts (its ``t0``): where the last encoder's published
    video ended (``resume_at``), so that the stream has no hole while FFmpeg was replaced
    (its first segments show the first frame it gets, written at once), unless that is
    more than ``limit`` before the first frame; else at the first frame."""
    if resume_at is None or captured_at - resume_at > limit:
        return captured_at
    return resume_at


def min_gap(fps: int, min_fps: int) -> int | None:
    """Ticks between frames at the least (``min_fps``); None: no minimum rate."""
    return max(1, round(fps / min_fps)) if min_fps else None


def next_due(last_pts: int, seg_ticks: int, gap: int | None, pending: bool, dense: bool) -> int:
    """The pts of the next repeat if no new frame comes first: the next segment boundary, or
    sooner for the minimum rate, or the very next tick when a frame is held in the muxer
    (``pending``) or in a dense stretch."""
    due = (last_pts // seg_ticks + 1) * seg_ticks
    if gap is not None:
        due = min(due, last_pts + gap)
    if pending or dense:
        due = min(due, last_pts + 1)
    return due


def pts_for(captured_at: float, t0: float, fps: int, last_pts: int) -> int:
    """A new frame's pts: its capture time on the tick grid from ``t0``, rounded to the
    nearest tick, and always after the last frame (timestamps must increase)."""
    return max(last_pts + 1, math.floor((captured_at - t0) * fps + 0.5))


def silence_samples(pts: int, fps: int, written: int) -> int:
    """Samples of silence still to write so that the audio reaches AUDIO_LEAD past frame ``pts``,
    given ``written`` samples so far: whole AAC frames (``AUDIO_FRAME_SAMPLES``), so up to
    one frame (21 ms) more than that."""
    need = int((pts / fps + AUDIO_LEAD) * AUDIO_RATE) - written
    return -(-need // AUDIO_FRAME_SAMPLES) * AUDIO_FRAME_SAMPLES if need > 0 else 0


@dataclass(frozen=True)
class Step:
    """One frame to hand FFmpeg: ``silence`` samples of audio first, then the frame (the last
    one again if ``repeat``) at ``pts``. ``then`` is the cadence once it is written."""

    pts: int
    silence: int
    repeat: bool
    then: Cadence


@dataclass(frozen=True)
class Cadence:
    """Where the encoder's input stands: the last frame's pts, whether it is still held in the
    muxer, the end of a dense stretch, the silence written. Immutable, so an actor adopts
    ``Step.then`` only once the step is written."""

    fps: int
    segment_ticks: int
    gap: int | None
    flush_frames: bool
    t0: float
    last_pts: int = 0
    pending: bool = True
    dense_until: float = -math.inf
    audio_samples: int = 0

    @classmethod
    def start(cls, spec: EncodeSpec, t0: float) -> Step:
        """The first frame, captured at ``t0``: pts 0. It is held in the muxer until another
        follows, so it is pending whatever ``flush_frames`` says."""
        silence = silence_samples(0, spec.fps, 0)
        cadence = cls(spec.fps, spec.segment_ticks, min_gap(spec.fps, spec.min_fps), spec.flush_frames, t0, audio_samples=silence)
        return Step(0, silence, False, cadence)

    def due(self, now: float) -> int:
        """The pts of the next repeat, asked at ``now``."""
        return next_due(self.last_pts, self.segment_ticks, self.gap, self.pending, now < self.dense_until)

    def time_of(self, pts: int) -> float:
        """When frame ``pts`` is due (the clock of ``t0``)."""
        return self.t0 + pts / self.fps

    def dense(self, now: float, seconds: float) -> Cadence:
        """A ``Dense`` request at ``now``: every tick for ``seconds`` (stretches overlap, not add)."""
        return replace(self, dense_until=max(self.dense_until, now + seconds))

    def repeat(self, pts: int) -> Step:
        """The last frame again at ``pts`` (from ``due``); one at a segment boundary is a
        keyframe, pushed out of the muxer by the next tick while the publisher still waits
        for keyframes to list segments."""
        boundary, segment = pts % self.segment_ticks == 0, pts // self.segment_ticks
        return self._step(pts, repeat=True, pending=boundary and segment <= LISTED_WHEN_WHOLE_FROM)

    def frame(self, captured_at: float) -> Step:
        """A new frame captured at ``captured_at``."""
        return self._step(pts_for(captured_at, self.t0, self.fps, self.last_pts), repeat=False, pending=self.flush_frames)

    def _step(self, pts: int, *, repeat: bool, pending: bool) -> Step:
        silence = silence_samples(pts, self.fps, self.audio_samples)
        return Step(pts, silence, repeat, replace(self, last_pts=pts, pending=pending, audio_samples=self.audio_samples + silence))
