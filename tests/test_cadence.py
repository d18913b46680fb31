"""The encoder's frame cadence, as tables: frames and Dense requests in (times in ms), the
frames FFmpeg gets out — when, at which pts, new or repeated, and the silence before each."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pytest

from pagecast.core.cadence import AUDIO_LEAD, FILL_LIMIT, Cadence, min_gap, next_due, pts_for, resume_point, silence_samples
from pagecast.core.ffmpeg import AUDIO_FRAME_SAMPLES, AUDIO_RATE, EncodeSpec


@pytest.mark.parametrize(
    "last_pts, seg, gap, pending, dense, due",
    [
        pytest.param(0, 10, None, False, False, 10, id="an idle frame waits for the next segment boundary"),
        pytest.param(13, 10, None, False, False, 20, id="from mid-segment too"),
        pytest.param(10, 10, None, False, False, 20, id="a frame on a boundary waits for the next one"),
        pytest.param(13, 10, None, True, False, 14, id="a frame held in the muxer is pushed out one tick later"),
        pytest.param(13, 10, None, False, True, 14, id="a dense stretch repeats every tick"),
        pytest.param(19, 10, None, True, False, 20, id="the tick after may be the boundary itself"),
        pytest.param(4, 10, 3, False, False, 7, id="a minimum rate repeats every gap"),
        pytest.param(8, 10, 3, False, False, 10, id="a boundary before the gap comes first"),
        pytest.param(4, 10, 3, True, False, 5, id="a held frame comes before the gap"),
    ],
)
def test_next_repeat_is_due_at_the_earliest_reason(last_pts, seg, gap, pending, dense, due):
    assert next_due(last_pts, seg, gap, pending, dense) == due


@pytest.mark.parametrize(
    "fps, min_fps, gap",
    [(10, 0, None), (10, 5, 2), (30, 2, 15), (25, 2, 12), (10, 30, 1)],
)
def test_minimum_rate_is_a_gap_in_ticks_of_at_least_one(fps, min_fps, gap):
    assert min_gap(fps, min_fps) == gap


@pytest.mark.parametrize(
    "captured_ms, t0_ms, fps, last_pts, pts",
    [
        pytest.param(1000, 0, 10, 0, 10, id="capture time on the tick grid"),
        pytest.param(1049, 0, 10, 0, 10, id="rounded down to the nearest tick"),
        pytest.param(1051, 0, 10, 0, 11, id="rounded up to the nearest tick"),
        pytest.param(1016, 0, 30, 0, 30, id="at 30 fps a tick is 33 ms"),
        pytest.param(1020, 0, 10, 10, 11, id="a second frame in the same tick takes the next"),
        pytest.param(900, 0, 10, 12, 13, id="a frame captured before the last repeat goes after it"),
        pytest.param(-50, 0, 10, 0, 1, id="a frame captured before the first still goes after it"),
        pytest.param(86_401_000, 86_400_000, 30, 0, 30, id="counted from the first frame's capture, on any clock"),
    ],
)
def test_new_frame_pts_is_its_capture_time_in_ticks_and_always_increases(captured_ms, t0_ms, fps, last_pts, pts):
    assert pts_for(captured_ms / 1000, t0_ms / 1000, fps, last_pts) == pts


@pytest.mark.parametrize(
    "captured, resume_at, t0",
    [
        pytest.param(104.0, None, 104.0, id="a first encoder starts at its first frame"),
        pytest.param(104.0, 100.5, 100.5, id="a replacement starts where the last one's video ended"),
        pytest.param(100.2, 100.5, 100.5, id="also when its first frame is older than that"),
        pytest.param(100.5 + FILL_LIMIT + 1, 100.5, 100.5 + FILL_LIMIT + 1, id="not after a hole too long to fill"),
    ],
)
def test_a_replacement_encoders_timeline_starts_where_the_last_ones_video_ended(captured, resume_at, t0):
    assert resume_point(captured, resume_at) == t0


def test_a_timeline_started_in_the_past_catches_up_with_a_keyframe_at_every_boundary_at_once():
    """The hole a replaced encoder left is filled with its first frame, written at once."""
    spec = EncodeSpec(width=64, height=64, fps=10, bitrate_kbps=100, segment_duration=1.0)
    step = Cadence.start(spec, t0=100.0)
    now = 103.55  # the first frame arrives 3.55 s after the old video ended
    written = [step.pts]
    cadence = step.then
    while cadence.time_of(due := cadence.due(now)) <= now:
        step = cadence.repeat(due)
        written.append(step.pts)
        cadence = step.then
    assert written == [0, 1, 10, 11, 20, 21, 30, 31]
    assert cadence.due(now) == 40  # then the next boundary, after now: live again


@pytest.mark.parametrize(
    "pts, fps, written, samples",
    [
        pytest.param(0, 10, 0, 5 * 1024, id="the first frame gets the lead (4800 samples), in whole AAC frames"),
        pytest.param(10, 10, 5120, 47 * 1024, id="then up to the lead past each frame (52800 samples: 51.6 frames)"),
        pytest.param(1, 30, 5120, 2 * 1024, id="one 30 fps tick of audio (6400 samples)"),
        pytest.param(1, 30, 6144, 1024, id="a part frame still missing is a whole frame"),
        pytest.param(1, 10, 53248, 0, id="never less than what was written"),
    ],
)
def test_silence_reaches_the_audio_lead_past_each_frame_in_whole_aac_frames(pts, fps, written, samples):
    assert silence_samples(pts, fps, written) == samples
    assert samples % AUDIO_FRAME_SAMPLES == 0


# ---- the cadence over time ------------------------------------------------------------------


@dataclass(frozen=True)
class F:
    ms: int  #: a new frame arrives (and is captured) then


@dataclass(frozen=True)
class D:
    ms: int  #: a Dense request for ``seconds`` arrives then
    seconds: float


def drive(arrivals: list, until_ms: int, **spec) -> list[tuple[int, int, str]]:
    """Run the cadence as the encoder's loop does: wait for an arrival until the next repeat
    is due; an arrival strictly before the deadline wins. Returns (ms, pts, new|rep) per frame
    written, up to ``until_ms``."""
    spec = EncodeSpec(320, 240, **{"fps": 10, "bitrate_kbps": 500, **spec})
    queue = deque(arrivals)
    first = queue.popleft()
    step = Cadence.start(spec, first.ms / 1000)
    now = first.ms
    out = []
    while True:
        out.append((now, step.pts, "rep" if step.repeat else "new"))
        cadence = step.then
        while True:
            due = cadence.due(now / 1000)
            due_ms = round(cadence.time_of(due) * 1000)
            if queue and queue[0].ms < due_ms:
                arrival = queue.popleft()
                now = max(now, arrival.ms)
                if isinstance(arrival, D):
                    cadence = cadence.dense(now / 1000, arrival.seconds)
                    continue
                step = cadence.frame(arrival.ms / 1000)
            else:
                if due_ms > until_ms:
                    return out
                now = max(now, due_ms)
                step = cadence.repeat(due)
            break


@pytest.mark.parametrize(
    "arrivals, until_ms, spec, written",
    [
        pytest.param(
            [F(0)], 5500, {"flush_frames": False},
            [(0, 0, "new"), (100, 1, "rep"), (1000, 10, "rep"), (1100, 11, "rep"), (2000, 20, "rep"), (2100, 21, "rep"),
             (3000, 30, "rep"), (3100, 31, "rep"), (4000, 40, "rep"), (5000, 50, "rep")],
            id="an idle page costs a keyframe per segment, the first ones each with the tick that pushes it out",
        ),
        pytest.param(
            [F(0), F(450)], 1200, {"flush_frames": False},
            [(0, 0, "new"), (100, 1, "rep"), (450, 5, "new"), (1000, 10, "rep"), (1100, 11, "rep")],
            id="without flush_frames a new frame waits in the muxer for the boundary",
        ),
        pytest.param(
            [F(0), F(450)], 1200, {"flush_frames": True},
            [(0, 0, "new"), (100, 1, "rep"), (450, 5, "new"), (600, 6, "rep"), (1000, 10, "rep"), (1100, 11, "rep")],
            id="with flush_frames a new frame is pushed out one tick later",
        ),
        pytest.param(
            [F(0), F(120), F(230), F(340)], 500, {"flush_frames": True},
            [(0, 0, "new"), (100, 1, "rep"), (120, 2, "new"), (230, 3, "new"), (340, 4, "new"), (500, 5, "rep")],
            id="a new frame before the flushing tick takes the next free tick instead of the repeat",
        ),
        pytest.param(
            [F(0), F(10), F(20)], 150, {"flush_frames": False},
            [(0, 0, "new"), (10, 1, "new"), (20, 2, "new")],
            id="frames faster than the rate take consecutive ticks",
        ),
        pytest.param(
            [F(0)], 1000, {"flush_frames": False, "min_fps": 5},
            [(0, 0, "new"), (100, 1, "rep"), (300, 3, "rep"), (500, 5, "rep"), (700, 7, "rep"), (900, 9, "rep"), (1000, 10, "rep")],
            id="a minimum rate repeats every gap and still meets each boundary",
        ),
        pytest.param(
            [F(0), D(350, 0.5)], 1200, {"flush_frames": False},
            [(0, 0, "new"), (100, 1, "rep"), (350, 2, "rep"), (350, 3, "rep"), (400, 4, "rep"), (500, 5, "rep"), (600, 6, "rep"),
             (700, 7, "rep"), (800, 8, "rep"), (900, 9, "rep"), (1000, 10, "rep"), (1100, 11, "rep")],
            id="a dense request repeats every tick for its seconds, catching up on the tick it missed",
        ),
        pytest.param(
            [F(0), D(350, 0.5), D(450, 0.2)], 1200, {"flush_frames": False},
            [(0, 0, "new"), (100, 1, "rep"), (350, 2, "rep"), (350, 3, "rep"), (400, 4, "rep"), (500, 5, "rep"), (600, 6, "rep"),
             (700, 7, "rep"), (800, 8, "rep"), (900, 9, "rep"), (1000, 10, "rep"), (1100, 11, "rep")],
            id="a shorter dense request inside a longer one does not cut it short",
        ),
        pytest.param(
            [F(0), D(350, 0.1)], 1200, {"flush_frames": False, "segment_duration": 0.5},
            [(0, 0, "new"), (100, 1, "rep"), (350, 2, "rep"), (350, 3, "rep"), (400, 4, "rep"), (500, 5, "rep"), (600, 6, "rep"),
             (1000, 10, "rep"), (1100, 11, "rep")],
            id="half-second segments get a keyframe every five ticks",
        ),
    ],
)
def test_frames_written_over_time(arrivals, until_ms, spec, written):
    assert drive(arrivals, until_ms, **spec) == written


@pytest.mark.parametrize("fps, flush_frames", [(10, True), (30, False), (25, True)])
def test_silence_written_always_reaches_the_lead_past_the_last_frame(fps, flush_frames):
    spec = EncodeSpec(320, 240, fps, 500, flush_frames=flush_frames, min_fps=2)
    step, written = Cadence.start(spec, 5.0), 0
    for captured_ms in (5013, 5020, 5900, 7310, 7320, 9000):
        while True:
            written += step.silence
            lead = int((step.pts / fps + AUDIO_LEAD) * AUDIO_RATE)
            assert written == step.then.audio_samples and lead <= written < lead + AUDIO_FRAME_SAMPLES
            due = step.then.due(0.0)
            if step.then.time_of(due) >= captured_ms / 1000:
                break
            step = step.then.repeat(due)
        step = step.then.frame(captured_ms / 1000)


def test_a_cadence_is_unchanged_until_the_actor_adopts_the_step():
    """Steps are values: a write cancelled half-way leaves the cadence as it was."""
    start = Cadence.start(EncodeSpec(320, 240, 10, 500), 100.0)
    cadence = start.then
    before = (cadence.last_pts, cadence.pending, cadence.audio_samples)
    step = cadence.frame(100.56)
    assert (step.pts, step.repeat, step.then.last_pts) == (6, False, 6)
    assert (cadence.last_pts, cadence.pending, cadence.audio_samples) == before
