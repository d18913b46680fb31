"""The live stream in memory: the pure segment ring, playlist and viewer cursors
(``core.playlist``), then the publisher's Trio waits and progressive followers."""

import json
import re
import shutil
import subprocess

import pytest
import trio
import trio.testing

from pagecast.core.fmp4 import Fmp4Splitter, Fragment, InitInfo
from pagecast.core.playlist import Cursor, SegmentRing
from pagecast.session.publish import Publisher, PublisherEnded

from helpers import ffmpeg_fmp4

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="needs ffmpeg and ffprobe"
)


class Stream:
    def __init__(self, raw: bytes):
        items = Fmp4Splitter().feed(raw)
        self.raw = raw
        self.init: InitInfo = items[0]
        self.frags: list[Fragment] = items[1:]
        self.keys = [i for i, f in enumerate(self.frags) if f.keyframe]


@pytest.fixture(scope="module")
def short() -> Stream:
    """6 s, 10 fps: six 1 s segments."""
    return Stream(ffmpeg_fmp4(6, 10))


@pytest.fixture(scope="module")
def long() -> Stream:
    """50 s, 5 fps: fifty 1 s segments."""
    return Stream(ffmpeg_fmp4(50, 5))


@pytest.fixture(scope="module")
def sparse() -> Stream:
    """4 s at 2 fps: mostly audio-only fragments between sparse video frames."""
    return Stream(ffmpeg_fmp4(4, 2))


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def ring(clock=None, wallclock=None, **options) -> SegmentRing:
    """A ring on fake clocks: the core reads no clock of its own."""
    return SegmentRing(clock=clock or FakeClock(), wallclock=wallclock or FakeClock(1_700_000_000.0), **options)


def drain(cursor: Cursor) -> list[bytes]:
    """Every chunk the cursor has for now."""
    out = []
    while (chunk := cursor.step()) is not None:
        out.append(chunk)
    return out


def feed(r: SegmentRing, stream: Stream, frags=None, clock: FakeClock | None = None, step: float = 0.1,
         init: bool = True) -> None:
    if init:
        r.feed(stream.init.data)
    for frag in stream.frags if frags is None else frags:
        if clock is not None:
            clock.t += step
        r.feed(frag.data)


def segments(playlist: str) -> list[int]:
    return [int(n) for n in re.findall(r"^seg-(\d+)\.m4s$", playlist, re.M)]


def tag(playlist: str, name: str) -> str | None:
    m = re.search(rf"^#{name}:(.*)$", playlist, re.M)
    return m.group(1) if m else None


def extinfs(playlist: str) -> list[float]:
    return [float(d) for d in re.findall(r"^#EXTINF:([\d.]+),$", playlist, re.M)]


def probe_frames(data: bytes) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pts_time",
         "-of", "json", "-"],
        input=data, check=True, capture_output=True,
    ).stdout
    return json.loads(out)["frames"]


# ---- segmentation and the playlist ----------------------------------------------------------


def test_not_live_until_next_keyframe_completes_first_segment(short):
    r = ring()
    feed(r, short, short.frags[: short.keys[1]])
    assert not r.live and segments(r.playlist()) == []
    r.feed(short.frags[short.keys[1]].data)
    assert r.live
    assert segments(r.playlist()) == [0]


def test_playlist_is_live_hls_with_map_program_date_time_and_relative_uris(short):
    wall = FakeClock(1_700_000_000.25)
    r = ring(wallclock=wall, hold_back=3.0)
    r.feed(short.init.data)
    for frag in short.frags:
        wall.t += 0.1
        r.feed(frag.data)
    text = r.playlist()
    lines = text.splitlines()
    assert lines[:4] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-TARGETDURATION:1"]
    assert "#EXT-X-SERVER-CONTROL:HOLD-BACK=3.000" in lines
    assert tag(text, "EXT-X-MEDIA-SEQUENCE") == "0"
    assert "ENDLIST" not in text and "PLAYLIST-TYPE" not in text and "DISCONTINUITY" not in text
    assert lines.index('#EXT-X-MAP:URI="init-0.mp4"') < lines.index("seg-0.m4s")
    assert segments(text) == [0, 1, 2, 3, 4, 5]  # the 6th too: its video and audio reached the stream's end
    pdts = re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", text, re.M)
    assert pdts[0] == "2023-11-14T22:13:20.350Z"  # wallclock when the first fragment arrived
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p) for p in pdts)
    assert all(re.fullmatch(r"\d+\.\d{3},", d) for d in re.findall(r"^#EXTINF:(.*)$", text, re.M))
    assert all(d == pytest.approx(1.0, abs=0.05) for d in extinfs(text))
    assert r.init(0) == short.init.data
    assert r.segment(0) == b"".join(f.data for f in short.frags[: short.keys[1]])


def test_program_date_time_starts_when_the_first_picture_was_taken_if_the_encoder_says_so(short):
    """FFmpeg gets the first frame out a few hundred ms after it was captured: dating the
    stream by that arrival would make every picture look later than it was."""
    wall = FakeClock(1_700_000_000.25)
    r = ring(wallclock=wall)
    r.first_capture(1_700_000_000.0)
    r.feed(short.init.data)
    for frag in short.frags:
        wall.t += 0.1
        r.feed(frag.data)
    r.first_capture(1_700_000_005.0)  # later calls change nothing
    pdts = re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", r.playlist(), re.M)
    assert pdts[0] == "2023-11-14T22:13:20.000Z"


def test_program_date_time_follows_media_time_not_arrival_jitter(short):
    """Shaka places segments by PROGRAM-DATE-TIME: jittery arrival times would open gaps."""
    import datetime
    import random

    wall = FakeClock(1_700_000_000.0)
    r = ring(wallclock=wall)
    r.feed(short.init.data)
    rng = random.Random(7)
    for frag in short.frags:
        wall.t += 0.1 + rng.uniform(-0.08, 0.08)
        r.feed(frag.data)
    text = r.playlist()
    pdts = [datetime.datetime.fromisoformat(p.replace("Z", "+00:00")).timestamp() for p in re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", text, re.M)]
    durations = extinfs(text)
    for (a, b), d in zip(zip(pdts, pdts[1:]), durations):
        assert b - a == pytest.approx(d, abs=0.0015)


def test_a_restarted_encoders_segments_go_on_where_the_last_ones_ended_with_no_hole(short):
    """An encoder replaced after a hang comes back seconds later: a hole that long in the
    PROGRAM-DATE-TIME timeline is a gap Shaka must jump, and jumping it it sometimes stalls."""
    import datetime

    wall = FakeClock(1_700_000_000.0)
    r = ring(wallclock=wall)
    feed(r, short)
    r.begin_generation()  # publishes the old encoder's open segment
    last_end = r.segments()[-1].wallclock + r.segments()[-1].duration
    wall.t += 4.0  # the new FFmpeg's first output, after the hang and its restart
    feed(r, short)
    text = r.playlist()
    pdts = [datetime.datetime.fromisoformat(p.replace("Z", "+00:00")).timestamp() for p in re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", text, re.M)]
    for (a, b), d in zip(zip(pdts, pdts[1:]), extinfs(text)):
        assert b - a == pytest.approx(d, abs=0.0015)
    first_new = next(s for s in r.segments() if s.generation == 1)
    assert first_new.wallclock == pytest.approx(last_end, abs=0.0015)


def test_generation_end_is_where_the_current_encoders_published_video_ends(short):
    r = ring()
    assert r.generation_end() is None
    feed(r, short)
    r.begin_generation()  # publishes the open segment
    last = r.segments()[-1]
    assert r.generation_end() == pytest.approx(last.start + last.duration)
    r.feed(short.init.data)  # the new encoder's init: its generation has no segment yet
    assert r.generation_end() is None


def test_segment_is_decodable_by_ffprobe(short):
    r = ring()
    feed(r, short)
    frames = probe_frames(r.init(0) + r.segment(2))
    assert len(frames) == 10
    assert frames[0]["key_frame"] == 1 and sum(f["key_frame"] for f in frames) == 1
    assert float(frames[0]["pts_time"]) == pytest.approx(2.0, abs=0.05)


def test_end_publishes_open_segment_without_endlist(short):
    r = ring()
    feed(r, short, short.frags[:-1])  # the 6th segment short of its end: still open
    assert segments(r.playlist()) == [0, 1, 2, 3, 4]
    r.end()
    text = r.playlist()
    assert segments(text) == [0, 1, 2, 3, 4, 5]
    assert "ENDLIST" not in text
    assert extinfs(text)[-1] == pytest.approx(0.9, abs=0.05)  # from sample durations (its last 0.1 s left out)
    assert len(probe_frames(r.init(0) + r.segment(5))) == 9
    r.feed(short.frags[0].data)  # late output after end is ignored
    assert r.stats["segments_produced"] == 6


def test_sparse_video_segments_include_audio_only_fragments(sparse):
    r = ring()
    feed(r, sparse)
    r.end()
    assert extinfs(r.playlist()) == pytest.approx([1.0, 1.0, 1.0, 1.0], abs=0.05)
    seg = r.segment(1)
    assert seg == b"".join(f.data for f in sparse.frags[sparse.keys[1]: sparse.keys[2]])
    frames = probe_frames(r.init(0) + seg)
    assert len(frames) == 2 and frames[0]["key_frame"] == 1


def test_fragments_before_first_keyframe_are_dropped(short):
    r = ring()
    feed(r, short, short.frags[3:])
    assert r.stats["fragments_dropped"] == short.keys[1] - 3
    assert segments(r.playlist()) == [0, 1, 2, 3, 4]
    assert r.segment(0) == b"".join(f.data for f in short.frags[short.keys[1]: short.keys[2]])


def test_feeding_arbitrary_chunks_gives_identical_segments(short):
    whole, chunked = ring(wallclock=FakeClock()), ring(wallclock=FakeClock())
    feed(whole, short)
    for i in range(0, len(short.raw), 333):
        chunked.feed(short.raw[i:i + 333])
    assert chunked.playlist() == whole.playlist()
    assert all(chunked.segment(n) == whole.segment(n) for n in range(5))


def test_a_segment_is_listed_once_whole_not_when_the_next_keyframe_arrives(short):
    r = ring()
    feed(r, short, short.frags[: short.keys[4] - 1])
    assert segments(r.playlist()) == [0, 1, 2]  # the 4th lacks its last 0.1 s
    r.feed(short.frags[short.keys[4] - 1].data)
    assert segments(r.playlist()) == [0, 1, 2, 3]  # whole: the encoder needs no frame after the keyframe to close it
    assert r.segment(3) == b"".join(f.data for f in short.frags[short.keys[3]: short.keys[4]])


def test_keyframes_off_the_boundaries_turn_early_listing_off_for_the_generation():
    stream = Stream(ffmpeg_fmp4(8, 10, keyframes="0,1,2,3,4,5.5,6.5,7.5"))
    r = ring()
    feed(r, stream, stream.frags[: stream.keys[6]])
    # 4–5 was listed at 5 (its 5–5.5 reaches only progressive viewers); 5.5 is no boundary, so [5.5, 6.5) waits for its next keyframe
    assert len(segments(r.playlist())) == 5
    r.feed(stream.frags[stream.keys[6]].data)
    assert len(segments(r.playlist())) == 6


def test_target_duration_covers_longest_segment_and_never_decreases():
    stream = Stream(ffmpeg_fmp4(6, 10, keyframes="0,1,3.6,4.6,5.6"))
    r = ring()
    feed(r, stream, stream.frags[: stream.keys[2]])
    assert tag(r.playlist(), "EXT-X-TARGETDURATION") == "1"
    r.feed(stream.frags[stream.keys[2]].data)
    text = r.playlist()
    assert extinfs(text) == pytest.approx([1.0, 2.6], abs=0.05)
    assert tag(text, "EXT-X-TARGETDURATION") == "3"
    feed(r, stream, stream.frags[stream.keys[2] + 1:], init=False)
    assert tag(r.playlist(), "EXT-X-TARGETDURATION") == "3"
    assert ring(segment_duration=2.0).target_duration == 2


def test_playlist_window_holds_at_least_40_seconds(long):
    r = ring(window=40.0)
    feed(r, long)
    text = r.playlist()
    durations = extinfs(text)
    assert sum(durations) >= 40.0
    assert sum(durations[1:]) < 40.0  # and not more than needed
    assert int(tag(text, "EXT-X-MEDIA-SEQUENCE")) == segments(text)[0] > 0
    assert segments(text) == list(range(segments(text)[0], 50))  # the last one too: whole


def test_playlist_window_holds_at_least_three_target_durations(short):
    r = ring(window=1.0)
    feed(r, short)
    assert sum(extinfs(r.playlist())) >= 3 * r.target_duration
    assert len(segments(r.playlist())) == 3


def test_segment_stays_fetchable_after_leaving_playlist(short):
    clock = FakeClock()
    r = ring(window=2.0, clock=clock)  # 3 x target: 3 segments listed
    feed(r, short, short.frags[: short.keys[4]], clock=clock)  # the 4th segment listed once whole
    assert segments(r.playlist()) == [1, 2, 3]
    removed_at = clock.t
    playlist_duration = sum(extinfs(r.playlist()))
    seg0 = r.segment(0)
    assert seg0 is not None and r.stats["segments_held"] == 4
    keep = r.segments()[0].duration + playlist_duration
    clock.t = removed_at + keep - 0.01
    assert r.segment(0) == seg0
    clock.t = removed_at + keep + 0.01
    assert r.segment(0) is None
    assert r.stats["segments_held"] == 3 and r.stats["segments_expired"] == 1
    assert r.segment(1) is not None


def test_max_bytes_drops_oldest_unlisted_segments_first(long):
    r = ring(window=10.0)
    feed(r, long)
    sizes = {s.sequence: len(s.data) for s in r.segments()}
    listed = segments(r.playlist())
    assert min(sizes) < listed[0]  # some delisted segments are still held
    budget = sum(sizes[n] for n in listed) + len(long.init.data) + 400_000
    small = ring(window=10.0, max_bytes=budget)
    feed(small, long)
    assert small.stats["bytes_held"] <= budget
    assert segments(small.playlist()) == listed  # listed ones survive
    assert small.stats["segments_evicted"] > 0
    assert small.segment(min(sizes)) is None

    tiny = ring(window=10.0, max_bytes=1)
    feed(tiny, long)
    assert tiny.stats["segments_held"] == 1  # never drops the newest segment
    assert segments(tiny.playlist()) == [49]


def test_encoder_restart_continues_media_sequence_with_discontinuity(short):
    r = ring()
    feed(r, short)
    r.begin_generation()
    feed(r, short)
    text = r.playlist()
    assert segments(text) == list(range(12))
    lines = text.splitlines()
    disc = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[disc + 1] == '#EXT-X-MAP:URI="init-1.mp4"'
    assert lines[disc + 4] == "seg-6.m4s"
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert tag(text, "EXT-X-DISCONTINUITY-SEQUENCE") is None
    assert r.init(0) == r.init(1) == short.init.data
    assert r.stats["generation"] == 1
    frames = probe_frames(r.init(1) + r.segment(6))
    assert frames[0]["key_frame"] == 1 and float(frames[0]["pts_time"]) == pytest.approx(0.0, abs=0.05)


def test_restart_discards_partial_output_of_the_old_encoder(short):
    r = ring()
    feed(r, short)
    r.feed(short.frags[-1].data[:100])
    r.begin_generation()
    feed(r, short)
    assert segments(r.playlist()) == list(range(12))


def test_new_init_without_begin_generation_starts_a_new_generation(short):
    r = ring()
    r.feed(short.raw + short.raw)
    text = r.playlist()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1 and 'URI="init-1.mp4"' in text


def test_discontinuity_sequence_counts_discontinuities_that_slid_out(short):
    r = ring(window=2.0)  # 3 segments listed
    for _ in range(3):
        r.begin_generation()
        feed(r, short)
    r.end()
    text = r.playlist()
    assert segments(text) == [15, 16, 17]
    assert tag(text, "EXT-X-DISCONTINUITY-SEQUENCE") == "2"
    assert "#EXT-X-DISCONTINUITY\n" not in text
    assert text.count("#EXT-X-MAP") == 1 and 'URI="init-2.mp4"' in text

    r = ring(window=2.0)
    feed(r, short)
    r.begin_generation()
    feed(r, short, short.frags[: short.keys[2] + 1])
    text = r.playlist()
    assert segments(text) == [5, 6, 7]
    assert tag(text, "EXT-X-DISCONTINUITY-SEQUENCE") is None
    lines = text.splitlines()
    assert lines[lines.index("#EXT-X-DISCONTINUITY") + 1] == '#EXT-X-MAP:URI="init-1.mp4"'
    feed(r, short, short.frags[short.keys[2] + 1: short.keys[3] + 1], init=False)
    text = r.playlist()
    assert segments(text) == [6, 7, 8]
    assert tag(text, "EXT-X-DISCONTINUITY-SEQUENCE") == "1"
    assert "#EXT-X-DISCONTINUITY\n" not in text and 'URI="init-1.mp4"' in text


def test_old_init_is_dropped_once_no_held_segment_uses_it(short):
    clock = FakeClock()
    r = ring(window=2.0, clock=clock)
    feed(r, short, clock=clock)
    r.begin_generation()
    feed(r, short, clock=clock)
    assert r.init(0) is not None
    clock.t += 100
    assert r.init(0) is None
    assert r.init(1) == short.init.data


def test_stats_and_latest_fragment_time(short):
    clock = FakeClock()
    r = ring(clock=clock)
    assert r.latest_fragment_time() is None
    feed(r, short, clock=clock)
    stats = r.stats
    assert stats["fragments"] == len(short.frags)
    assert stats["segments_produced"] == stats["segments_held"] == 6
    assert stats["generation"] == 0 and stats["viewers"] == 0 and stats["live"]
    assert stats["bytes_held"] == len(short.init.data) + sum(len(f.data) for f in short.frags)
    assert r.latest_fragment_time() == clock.t
    assert r.latest_fragment().fragment == short.frags[-1]


# ---- progressive viewers' cursors --------------------------------------------------------------


def test_cursor_has_nothing_before_the_first_keyframe_then_the_init_and_each_fragment(short):
    r = ring()
    cursor = r.cursor()
    assert drain(cursor) == [] and r.stats["viewers"] == 1
    r.feed(short.init.data)
    assert drain(cursor) == []
    r.feed(short.frags[0].data)
    assert drain(cursor) == [short.init.data, short.frags[0].data]
    feed(r, short, short.frags[1:4], init=False)
    assert drain(cursor) == [f.data for f in short.frags[1:4]]
    assert not cursor.closed
    r.end()
    assert drain(cursor) == [] and cursor.closed and r.stats["viewers"] == 0


def test_cursor_starts_at_latest_keyframe(short):
    r = ring()
    feed(r, short, short.frags[: short.keys[2] + 3])
    assert drain(r.cursor()) == [short.init.data] + [f.data for f in short.frags[short.keys[2]: short.keys[2] + 3]]


def test_slow_cursor_skips_to_latest_keyframe():
    stream = Stream(ffmpeg_fmp4(12, 5))
    clock = FakeClock()
    r = ring(clock=clock, follow_max_lag=4.0)
    feed(r, stream, stream.frags[:3], clock=clock)
    cursor = r.cursor()
    assert cursor.step() == stream.init.data
    assert cursor.step() == stream.frags[0].data
    feed(r, stream, stream.frags[3:], clock=clock, init=False)  # ~10 s later, nobody read
    assert cursor.step() == stream.frags[stream.keys[-1]].data
    assert r.stats["follower_skips"] == 1 and cursor.skips == 1
    r.end()
    assert drain(cursor) == [f.data for f in stream.frags[stream.keys[-1] + 1:]]
    assert cursor.closed and r.stats["viewers"] == 0


def test_cursor_within_lag_gets_every_fragment(short):
    clock = FakeClock()
    r = ring(clock=clock, follow_max_lag=4.0)
    feed(r, short, short.frags[:1], clock=clock)
    cursor = r.cursor()
    cursor.step()
    feed(r, short, short.frags[1:30], clock=clock, init=False)  # ~3 s behind
    assert drain(cursor) == [f.data for f in short.frags[:30]]
    assert r.stats["follower_skips"] == 0


def test_cursor_finishes_on_generation_change_after_draining(short):
    r = ring()
    feed(r, short, short.frags[:5])
    cursor = r.cursor()
    assert cursor.step() == short.init.data
    r.feed(short.frags[5].data)
    r.begin_generation()
    feed(r, short)
    assert drain(cursor) == [f.data for f in short.frags[:6]]
    assert cursor.closed and r.stats["viewers"] == 0
    fresh = r.cursor()  # a reconnecting viewer gets the new generation
    assert fresh.step() == short.init.data
    assert fresh.step() == short.frags[short.keys[-1]].data


def test_cursor_counts_as_a_viewer_until_closed_finished_or_dropped(short):
    r = ring()
    feed(r, short, short.frags[:3])
    closed, finished, dropped = r.cursor(), r.cursor(), r.cursor()
    assert r.stats["viewers"] == 3
    closed.close()
    closed.close()
    assert r.stats["viewers"] == 2 and closed.step() is None
    del dropped
    assert r.stats["viewers"] == 1
    r.end()
    drain(finished)
    assert r.stats["viewers"] == 0
    assert r.cursor().step() is None and r.stats["viewers"] == 0  # after the end: finished at once


# ---- the publisher's waits and followers (Trio) ---------------------------------------------------


async def test_wait_live_returns_once_first_segment_is_published(short):
    pub = Publisher()
    done = []

    async def waiter():
        await pub.wait_live()
        done.append(pub.live)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        feed(pub, short, short.frags[: short.keys[1]])
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        pub.feed(short.frags[short.keys[1]].data)
    assert done == [True]
    await pub.wait_live()  # already live: returns at once


async def test_wait_live_raises_if_stream_ends_before_going_live():
    pub = Publisher()
    outcome = []

    async def waiter():
        try:
            await pub.wait_live()
        except PublisherEnded:
            outcome.append("ended")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        pub.end()
    assert outcome == ["ended"]
    with pytest.raises(PublisherEnded):
        await pub.wait_live()


async def test_wait_keyframe_returns_at_the_first_keyframe_fragment_before_going_live(short):
    pub = Publisher()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pub.wait_keyframe)
        await trio.testing.wait_all_tasks_blocked()
        pub.feed(short.init.data)
        await trio.testing.wait_all_tasks_blocked()
        assert len(nursery.child_tasks) == 1
        pub.feed(short.frags[0].data)
    assert not pub.live
    ended = Publisher()
    ended.feed(short.init.data)
    ended.end()
    with pytest.raises(PublisherEnded):
        await ended.wait_keyframe()


async def collect(pub: Publisher, out: list, limit: int | None = None) -> None:
    async for chunk in pub.follow():
        out.append(chunk)
        if limit is not None and len(out) >= limit:
            break


async def test_follower_waits_for_first_keyframe_then_gets_init(short):
    pub = Publisher()
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, pub, got)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [] and pub.stats["viewers"] == 1
        pub.feed(short.init.data)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        pub.feed(short.frags[0].data)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [short.init.data, short.frags[0].data]
        for frag in short.frags[1:4]:
            pub.feed(frag.data)
        await trio.testing.wait_all_tasks_blocked()
        assert got[2:] == [f.data for f in short.frags[1:4]]
        pub.end()
    assert pub.stats["viewers"] == 0


async def test_many_followers_each_get_the_whole_stream(short):
    pub = Publisher()
    outs: list[list[bytes]] = [[] for _ in range(5)]
    async with trio.open_nursery() as nursery:
        for out in outs:
            nursery.start_soon(collect, pub, out)
        await trio.testing.wait_all_tasks_blocked()
        assert pub.stats["viewers"] == 5
        pub.feed(short.init.data)
        for frag in short.frags:
            pub.feed(frag.data)
            await trio.testing.wait_all_tasks_blocked()
        pub.end()
    expected = [short.init.data] + [f.data for f in short.frags]
    assert all(out == expected for out in outs)
    frames = probe_frames(b"".join(outs[0]))
    assert len(frames) == 60 and frames[0]["key_frame"] == 1


async def test_follower_iteration_ends_at_a_generation_change_and_async_with_closes_it(short):
    pub = Publisher()
    feed(pub, short, short.frags[:5])
    follower = pub.follow()
    assert await follower.__anext__() == short.init.data
    pub.feed(short.frags[5].data)
    pub.begin_generation()
    feed(pub, short)
    rest = [chunk async for chunk in follower]
    assert rest == [f.data for f in short.frags[:6]]
    assert pub.stats["viewers"] == 0
    async with pub.follow() as fresh:  # a reconnecting viewer gets the new generation
        assert await fresh.__anext__() == short.init.data
        assert await fresh.__anext__() == short.frags[short.keys[-1]].data
    assert pub.stats["viewers"] == 0


async def test_follower_finishes_when_stream_ends_while_waiting(short):
    pub = Publisher()
    feed(pub, short, short.frags[:3])
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, pub, got)
        await trio.testing.wait_all_tasks_blocked()
        pub.end()
    assert len(got) == 4 and pub.stats["viewers"] == 0
    assert [c async for c in pub.follow()] == []


async def test_viewer_count_is_accurate_when_follower_is_cancelled(short):
    pub = Publisher()
    feed(pub, short, short.frags[:3])
    got: list[bytes] = []
    with trio.CancelScope() as waiting:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect, pub, got)
            nursery.start_soon(collect, pub, [])
            await trio.testing.wait_all_tasks_blocked()
            assert pub.stats["viewers"] == 2
            waiting.cancel()  # both are parked waiting for the next fragment
    assert pub.stats["viewers"] == 0

    async def consumer_cancelled_between_chunks():
        async for _ in pub.follow():
            await trio.sleep_forever()  # e.g. blocked sending to a dead socket

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer_cancelled_between_chunks)
        await trio.testing.wait_all_tasks_blocked()
        assert pub.stats["viewers"] == 1
        nursery.cancel_scope.cancel()
    assert pub.stats["viewers"] == 0  # no gc.collect() needed: closed when the iterator is dropped

    await collect(pub, [], limit=2)  # abandoned by break
    assert pub.stats["viewers"] == 0
    assert len(got) == 4


async def test_follow_output_after_restart_reconnect_is_playable(short):
    pub = Publisher()
    feed(pub, short)
    pub.begin_generation()
    feed(pub, short, short.frags[: short.keys[1] + 2])
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, pub, got)
        await trio.testing.wait_all_tasks_blocked()
        feed(pub, short, short.frags[short.keys[1] + 2:], init=False)
        await trio.testing.wait_all_tasks_blocked()
        pub.end()
    frames = probe_frames(b"".join(got))
    assert frames[0]["key_frame"] == 1 and float(frames[0]["pts_time"]) == pytest.approx(1.0, abs=0.05)
    assert len(frames) == 50


@pytest.mark.parametrize("setting, segment, expected", [(0.0, 1.0, 3.0), (0.0, 0.5, 3.0), (0.0, 2.0, 6.0), (0.0, 1.5, 6.0), (4.5, 1.0, 4.5)])
def test_the_playlist_holds_players_three_target_durations_back_unless_set(setting, segment, expected):
    from pagecast.core.playlist import hold_back_for

    assert hold_back_for(setting, segment) == expected


def test_an_ended_stream_releases_its_media_and_keeps_its_counters(short):
    r = ring(window=40.0)
    feed(r, short)
    r.release()
    assert r.segment(0) is not None  # still live: nothing is released
    r.end()
    produced = r.stats["segments_produced"]
    r.release()
    assert r.segment(0) is None and r.init(0) is None and r.segments() == []
    assert r.stats["bytes_held"] == 0 and r.stats["segments_produced"] == produced > 0


# ---- HLS players: counted while they keep fetching -------------------------------------------

from pagecast.core.playlist import RecentReaders  # noqa: E402


@pytest.mark.parametrize("fetches, now, count", [
    ([], 0.0, 0),
    ([("tv", 0.0)], 0.0, 1),
    ([("tv", 0.0), ("tv", 1.0), ("tv", 2.0)], 2.0, 1),  # one player fetching again and again
    ([("tv", 0.0), ("phone", 0.5)], 1.0, 2),
    ([("tv", 0.0)], 5.0, 1),  # within the window
    ([("tv", 0.0)], 5.1, 0),  # stopped fetching: gone one window later
    ([("tv", 0.0), ("phone", 4.0)], 6.0, 1),
])
def test_an_hls_player_counts_while_it_fetched_within_the_window(fetches, now, count):
    readers = RecentReaders(window=5.0)
    for key, t in fetches:
        readers.seen(key, t)
    assert readers.count(now) == count


def test_viewers_are_hls_players_and_progressive_readers_together(short):
    clock = FakeClock()
    r = ring(clock=clock)
    feed(r, short, clock=clock)
    r.fetched_by(("10.0.0.7", "CrKey"))
    r.fetched_by(("10.0.0.7", "CrKey"))
    r.fetched_by(("10.0.0.8", "hls.js"))
    cursor = r.cursor()
    assert (r.stats["viewers"], r.stats["progressive_viewers"]) == (3, 1)
    clock.t += 10
    assert (r.stats["viewers"], r.stats["progressive_viewers"]) == (1, 1)  # the HLS players stopped fetching
    cursor.close()
    assert r.stats["viewers"] == 0
