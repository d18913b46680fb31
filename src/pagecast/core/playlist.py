"""The live stream in memory: FFmpeg's fMP4 output in; HLS init segments, media segments, the
live playlist and the fragment log for progressive viewers out.

One ring lives for a whole cast session. Encoder restarts become new *generations* (new
init segment, ``#EXT-X-DISCONTINUITY`` in the playlist) while the media sequence carries on,
so players already following the playlist keep going. Segments leave the playlist as the
window slides and memory a while later (RFC 8216), or sooner under ``max_bytes``.

Pure: the clocks are injected callables and nothing here waits. ``session/publish.py`` adds
the waits (for the first segment, the first keyframe, the next fragment) on top.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .fmp4 import DEFAULT_MAX_BOX_SIZE, Fmp4Splitter, Fragment, InitInfo
from .timestamps import iso_ms

__all__ = ["Cursor", "HeldFragment", "RecentReaders", "Segment", "SegmentRing"]


class RecentReaders:
    """Who reads a stream by fetching it (HLS players): a reader counts while it fetched the
    playlist or a segment within ``window`` seconds. A live player fetches the playlist about
    once a target duration, so a few of those is "still playing"; a player that stopped drops
    out one window later. Readers are told apart by ``key`` (an address and user agent)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._last: dict[object, float] = {}

    def seen(self, key: object, now: float) -> None:
        self._last[key] = now
        self._prune(now)

    def count(self, now: float) -> int:
        self._prune(now)
        return len(self._last)

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._last.items() if now - t > self.window]:
            del self._last[key]


@dataclass(frozen=True, slots=True)
class HeldFragment:
    """A fragment as received: ``received_at`` is ``clock()`` when it was fed (for latency)."""

    index: int
    generation: int
    fragment: Fragment
    received_at: float
    wallclock: float


@dataclass(slots=True, eq=False)
class Segment:
    """A published HLS segment: every fragment from one keyframe fragment to the next."""

    sequence: int
    generation: int
    discontinuity: int
    """Discontinuity sequence number: how many generation changes precede this segment."""
    data: bytes
    start: float
    duration: float
    wallclock: float
    fragments: int
    expires_at: float | None = None
    """Set when the segment leaves the playlist; it is dropped from memory after this."""


def hold_back_for(setting: float, segment_duration: float) -> float:
    """The HOLD-BACK to advertise: ``setting`` if set, else three target durations (RFC
    8216's minimum). Without one, Shaka (the engine Cast receivers are moving to) takes as its live offset
    the segments the playlist holds when it loads, at most three: a player that joins a young
    stream (one segment) sits at the live edge for good and stalls at every segment boundary."""
    return setting if setting > 0 else 3.0 * max(1, math.ceil(segment_duration))


#: The first segment of an encoder's output listed as soon as it is whole (its video at the
#: next boundary): by then its keyframes have shown they fall on the boundaries. The ones
#: before wait for the next keyframe's fragment, which the encoder pushes out (core.cadence).
LISTED_WHEN_WHOLE_FROM = 3


class SegmentRing:
    """Keeps the live stream in memory and serves it as LIVE HLS and as progressive fMP4.

    ``feed`` is meant for whoever reads the encoder's stdout; the rest answer the viewers.

    ``clock`` (monotonic) drives retention and follower lag, ``wallclock`` the
    PROGRAM-DATE-TIME tags. ``segment_duration`` is the encoder's keyframe interval (the
    floor for the target duration); ``window`` the minimum playlist length in seconds.
    ``hold_back`` is written as given (RFC 8216 wants ≥ 3 target durations; hls.js and
    Shaka use it as their live offset). ``follow_max_lag``: seconds a follower may fall
    behind before it jumps to the latest keyframe.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wallclock: Callable[[], float],
        segment_duration: float = 1.0,
        window: float = 40.0,
        max_bytes: int = 256 * 2**20,
        hold_back: float | None = None,
        follow_max_lag: float = 4.0,
        max_box_size: int = DEFAULT_MAX_BOX_SIZE,
    ) -> None:
        self.segment_duration = segment_duration
        self.window = window
        self.max_bytes = max_bytes
        self.hold_back = hold_back
        self.follow_max_lag = follow_max_lag
        self._clock = clock
        self._wallclock = wallclock
        self._anchors: dict[int, float] = {}
        self._first_capture: float | None = None  # wall clock of the stream's first picture
        self._edge_at: float | None = None  # clock() when the newest segment was published
        self._pdt_end: float | None = None  # PROGRAM-DATE-TIME where the newest segment ends
        self._splitter = Fmp4Splitter(max_box_size)

        self._generation = -1
        self._gen_open = False
        self._inits: dict[int, InitInfo] = {}
        self._segments: deque[Segment] = deque()
        self._listed_from = 0
        self._next_sequence = 0
        self._last_published: tuple[int, int] | None = None  # (generation, discontinuity)
        self._target = max(1, math.ceil(segment_duration))
        self._open: list[HeldFragment] | None = None
        self._open_published = False  # the open segment reached its boundary and is listed already
        self._open_ahead: list[HeldFragment] = []  # audio that came before the open segment's keyframe: its first
        self._ahead: list[HeldFragment] = []  # audio past a listed segment's end: the next segment's
        self._reached = (-math.inf, -math.inf)  # the open segment's video and audio end, seconds
        self._origin: float | None = None  # video start of the generation's second keyframe: where boundaries count from
        self._on_grid = 0  # this generation's keyframes so far, all on the boundaries (else -1: never list early)
        self._keyframes = 0  # this generation's
        self._open_bytes = 0
        self._segment_bytes = 0
        self._log: deque[HeldFragment] = deque()
        self._next_index = 0
        self._latest: HeldFragment | None = None

        self.live = False
        """The first segment is published (a playlist player can start)."""
        self.has_keyframe = False
        """A keyframe fragment arrived (a progressive viewer can start)."""
        self.ended = False

        self._fragments = 0
        self._fragments_dropped = 0
        self._segments_produced = 0
        self._segments_expired = 0
        self._segments_evicted = 0
        self._viewers = 0
        self._follower_skips = 0
        self._readers = RecentReaders(window=max(5.0, 3 * self._target))

    # ---- input -------------------------------------------------------------------------

    def begin_generation(self) -> None:
        """An encoder (re)starts: publish what the old one left, expect a new init next."""
        if self.ended:
            return
        self._end_generation()
        self._on_change()

    def feed(self, data: bytes) -> int:
        """Consume encoder output; returns how many video frames became available to viewers.
        Raises ``Fmp4Error`` on a corrupt stream (restart the encoder and call
        ``begin_generation``). Ignored after ``end()``."""
        if self.ended:
            return 0
        frames = 0
        for item in self._splitter.feed(data):
            if isinstance(item, InitInfo):
                self._start_generation(item)
            else:
                self._add_fragment(item)
                frames += item.video_samples
        self._expire()
        self._evict()
        return frames

    def end(self) -> None:
        """The stream is over: publish the open segment, finish followers, wake waiters."""
        if self.ended:
            return
        self._end_generation()
        self.ended = True
        self._on_change()

    def release(self) -> None:
        """Drop an ended stream's media (segments, inits, fragments); its counters stay. A
        session's record outlives it in /status, but megabytes of video nobody can play any
        more must not: fetches of it get 404, a progressive viewer finishes."""
        if not self.ended:
            return
        self._segments.clear()
        self._segment_bytes = 0
        self._inits.clear()
        self._log.clear()
        self._open, self._open_bytes, self._latest = None, 0, None
        self._open_published, self._open_ahead, self._ahead = False, [], []
        self._listed_from = self._next_sequence

    def first_capture(self, wallclock: float) -> None:
        """When the stream's first picture was taken (wall clock): its PROGRAM-DATE-TIME starts
        there, so a frame's date is when the page looked like that, not when FFmpeg, still
        starting, got it out (a few hundred ms later). Only the first call counts, and only
        before the first segment; without it the first fragment's arrival anchors the dates."""
        if self._first_capture is None and self._pdt_end is None:
            self._first_capture = wallclock

    def _start_generation(self, init: InitInfo) -> None:
        self._close_open(None)
        self._origin, self._on_grid, self._keyframes, self._ahead = None, 0, 0, []
        self._generation += 1
        self._gen_open = True
        self._inits[self._generation] = init
        self._on_change()

    def _add_fragment(self, fragment: Fragment) -> None:
        held = HeldFragment(self._next_index, self._generation, fragment, self._clock(), self._wallclock())
        self._fragments += 1
        if fragment.keyframe:
            self.has_keyframe = True
            ahead, self._ahead = self._ahead, []
            self._close_open(fragment.video_start)
            self._count_on_grid(fragment.video_start or 0.0)
            self._open, self._open_ahead, self._reached = [held], ahead, (-math.inf, -math.inf)
            self._reach(fragment)
            self._open_bytes = len(fragment.data) + sum(len(h.fragment.data) for h in ahead)
        elif self._open is not None:
            if not self._open_published:
                self._open.append(held)
                self._reach(fragment)
            elif fragment.video_start is None:
                self._ahead.append(held)  # the muxer writes the audio up to the next keyframe after the video that ends here
            else:
                self._on_grid = -1  # listed too early after all: from now on, at the next keyframe
                self._open.append(held)
            self._open_bytes += len(fragment.data)
        else:
            self._fragments_dropped += 1  # nothing decodable to attach it to yet
            return
        self._next_index += 1
        self._latest = held
        self._log.append(held)
        open_start = self._open[0].index
        horizon = held.received_at - self.follow_max_lag
        while self._log and self._log[0].index < open_start and self._log[0].received_at < horizon:
            self._log.popleft()
        if not self._open_published and self._whole():
            self._publish(self._open, None, self._open_ahead)
            self._open_published, self._open_bytes = True, 0  # its bytes are the segment's now
        self._on_change()

    def _count_on_grid(self, start: float) -> None:
        """The generation's first keyframe is left out (its start can be off by the audio's
        priming); the boundaries count from the second."""
        self._keyframes += 1
        if self._keyframes == 1:
            return
        if self._origin is None:
            self._origin, self._on_grid = start, 1
            return
        steps = (start - self._origin) / self.segment_duration
        if self._on_grid >= 0:
            self._on_grid = self._on_grid + 1 if abs(steps - round(steps)) * self.segment_duration < 1e-3 else -1

    def _whole(self) -> bool:
        """The open segment is whole once its video reaches the next segment boundary and its
        audio reaches where its video ends: the encoder forces a keyframe at every boundary
        (the first frame at or after it) and the muxer writes samples in decode order, so all
        that comes next belongs to the next segment. Listing it now, not when that keyframe's
        fragment arrives (the muxer holds each sample until the next one gives its duration),
        saves the encoder a frame a second on a page that does not change. From segment
        ``LISTED_WHEN_WHOLE_FROM`` on, while every keyframe (after the first) fell on a
        boundary, and never again in a generation where one did not or a segment was listed
        too early."""
        if self._open is None or self._origin is None or self._on_grid < LISTED_WHEN_WHOLE_FROM:
            return False
        video, audio = self._reached
        start = self._open[0].fragment.video_start or 0.0
        seg = self.segment_duration
        boundary = self._origin + (math.floor((start - self._origin) / seg + 1e-6) + 1) * seg
        has_audio = self._inits[self._generation].audio is not None
        return video >= boundary - 1e-3 and (not has_audio or audio >= video - 1e-3)

    def _reach(self, fragment: Fragment) -> None:
        """Where the open segment's video and audio reach so far (seconds)."""
        video, audio = self._reached
        if fragment.video_end is not None:
            video = max(video, fragment.video_end)
        track = self._inits[self._generation].audio
        for t in fragment.tracks:
            if track is not None and t.track_id == track.track_id and t.decode_time is not None:
                audio = max(audio, (t.decode_time + t.duration) / track.timescale)
        self._reached = (video, audio)

    def _end_generation(self) -> None:
        """The encoder's output so far is all there is: its open segment is published, and
        what comes next starts with an init."""
        self._close_open(None)
        self._splitter.reset()
        self._gen_open = False
        self._origin, self._on_grid, self._keyframes, self._ahead = None, 0, 0, []

    def _close_open(self, next_start: float | None) -> None:
        """Publish the open segment (if any and not yet). ``next_start``: video start of the next one."""
        frags, self._open = self._open, None
        ahead, self._open_ahead = self._open_ahead, []
        published, self._open_published = self._open_published, False
        self._open_bytes = 0
        if frags and not published:
            self._publish(frags, next_start, ahead)

    def _publish(self, frags: list[HeldFragment], next_start: float | None, ahead: list[HeldFragment]) -> None:
        """List ``frags`` (from a keyframe fragment on), after the audio that came ``ahead`` of it."""
        first = frags[0].fragment
        start = first.video_start or 0.0
        ends = [h.fragment.video_end for h in frags if h.fragment.video_end is not None]
        if next_start is not None and next_start > start:
            duration = next_start - start
        else:
            duration = (max(ends) - start) if ends else 0.0
        duration = max(round(duration, 3), 0.001)
        generation = frags[0].generation
        if self._last_published is None:
            discontinuity = 0
        else:
            last_gen, last_disc = self._last_published
            discontinuity = last_disc + (generation != last_gen)
        self._last_published = (generation, discontinuity)
        data = b"".join(h.fragment.data for h in (*ahead, *frags))
        # PROGRAM-DATE-TIME follows the media clock, anchored once per generation: players
        # (Shaka) place segments by it, and arrival-time jitter would open gaps between them.
        # A new generation (an encoder restarted) goes on where the last one ended: a hole in
        # the timeline is a gap players must jump, and Shaka, jumping it, sometimes stalls for good.
        if generation not in self._anchors:
            first = self._first_capture if self._first_capture is not None else frags[0].wallclock
            self._anchors[generation] = (first if self._pdt_end is None else self._pdt_end) - start
        anchor = self._anchors[generation]
        segment = Segment(
            self._next_sequence, generation, discontinuity, data, start, duration, anchor + start, len(ahead) + len(frags)
        )
        if not self._segments:
            self._listed_from = segment.sequence
        self._segments.append(segment)
        self._pdt_end = segment.wallclock + duration
        self._edge_at = self._clock()
        self._segment_bytes += len(data)
        self._next_sequence += 1
        self._segments_produced += 1
        self._target = max(self._target, math.floor(duration + 0.5))
        self._relist()
        self.live = True
        self._on_change()

    def _on_change(self) -> None:
        """Called after every change a reader may wait for (an init, a fragment, a segment, the
        end): the session's Publisher wakes its waiting tasks here."""

    # ---- retention ---------------------------------------------------------------------

    def _listed(self) -> list[Segment]:
        if not self._segments:
            return []
        first = self._segments[0].sequence
        return list(self._segments)[max(0, self._listed_from - first):]

    def _relist(self) -> None:
        """Slide the window: the newest segments covering ``window`` and 3 target durations."""
        need = max(self.window, 3 * self._target)
        total = 0.0
        start = self._listed_from
        for segment in reversed(self._segments):
            if segment.sequence < self._listed_from:
                break
            total += segment.duration
            start = segment.sequence
            if total >= need:
                break
        if start > self._listed_from:
            self._delist_until(start)

    def _delist_until(self, sequence: int) -> None:
        self._listed_from = sequence
        now = self._clock()
        playlist_duration = sum(s.duration for s in self._listed())
        for segment in self._segments:
            if segment.sequence >= sequence:
                break
            if segment.expires_at is None:
                # RFC 8216 6.2.2: keep it for its duration + the playlist's after removal
                segment.expires_at = now + segment.duration + playlist_duration

    def _expire(self) -> None:
        now = self._clock()
        while self._segments:
            first = self._segments[0]
            if first.expires_at is None or first.expires_at > now:
                break
            self._drop_oldest()
            self._segments_expired += 1
        self._drop_unused_inits()

    def _evict(self) -> None:
        """Enforce ``max_bytes``: oldest first (unlisted ones are the oldest); keep the newest."""
        evicted = False
        while len(self._segments) > 1 and self.bytes_held > self.max_bytes:
            self._drop_oldest()
            self._segments_evicted += 1
            evicted = True
        if evicted:
            if self._segments and self._listed_from < self._segments[0].sequence:
                self._listed_from = self._segments[0].sequence
            self._drop_unused_inits()

    def _drop_oldest(self) -> None:
        segment = self._segments.popleft()
        self._segment_bytes -= len(segment.data)

    def _drop_unused_inits(self) -> None:
        used = {s.generation for s in self._segments}
        used.add(self._generation)
        for generation in [g for g in self._inits if g not in used]:
            del self._inits[generation]

    # ---- output ------------------------------------------------------------------------

    @property
    def generation(self) -> int | None:
        """Current generation (0 for the first encoder run), None before the first init."""
        return None if self._generation < 0 else self._generation

    @property
    def init_info(self) -> InitInfo | None:
        """The current generation's init (tracks, ``codecs`` for a master playlist)."""
        return self._inits.get(self._generation)

    def generation_end(self) -> float | None:
        """Where the current generation's published video ends, in its own media seconds;
        None before its first segment. An encoder replacing it starts its timeline there."""
        if self._segments and self._segments[-1].generation == self._generation:
            last = self._segments[-1]
            return last.start + last.duration
        return None

    @property
    def target_duration(self) -> int:
        return self._target

    @property
    def bytes_held(self) -> int:
        return self._segment_bytes + self._open_bytes + sum(len(i.data) for i in self._inits.values())

    def playlist(self) -> str:
        """The LIVE HLS media playlist (sliding window, no ENDLIST, ever)."""
        self._expire()
        listed = self._listed()
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f"#EXT-X-TARGETDURATION:{self._target}",
        ]
        if self.hold_back is not None:
            lines.append(f"#EXT-X-SERVER-CONTROL:HOLD-BACK={self.hold_back:.3f}")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{listed[0].sequence if listed else self._next_sequence}")
        if listed and listed[0].discontinuity:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{listed[0].discontinuity}")
        previous: Segment | None = None
        for segment in listed:
            if previous is None or previous.generation != segment.generation:
                if previous is not None:
                    lines.append("#EXT-X-DISCONTINUITY")
                lines.append(f'#EXT-X-MAP:URI="init-{segment.generation}.mp4"')
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(segment.wallclock)}")
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(f"seg-{segment.sequence}.m4s")
            previous = segment
        return "\n".join(lines) + "\n"

    def init(self, generation: int) -> bytes | None:
        """``init-<generation>.mp4``; kept while the generation is current or has held segments."""
        self._expire()
        info = self._inits.get(generation)
        return None if info is None else info.data

    def segment(self, sequence: int) -> bytes | None:
        """``seg-<sequence>.m4s``, listed or recently delisted; None once gone (or not yet made)."""
        self._expire()
        if not self._segments:
            return None
        i = sequence - self._segments[0].sequence
        if 0 <= i < len(self._segments):
            return self._segments[i].data
        return None

    def segments(self) -> list[Segment]:
        """Held segments, oldest first (including delisted ones still kept for late fetches)."""
        self._expire()
        return list(self._segments)

    def latest_fragment(self) -> HeldFragment | None:
        return self._latest

    def latest_fragment_time(self) -> float | None:
        """``clock()`` when the newest fragment was fed, for capture→publish latency."""
        return None if self._latest is None else self._latest.received_at

    def fetched_by(self, reader: object) -> None:
        """A client fetched the playlist or a segment: an HLS player, counted in ``viewers``
        while it keeps fetching (``RecentReaders``)."""
        self._readers.seen(reader, self._clock())

    def cursor(self) -> Cursor:
        """A new progressive viewer's place in the stream (counted as a viewer until closed)."""
        return Cursor(self)

    @property
    def stats(self) -> dict:
        self._expire()
        listed = self._listed()
        return {
            "live": self.live,
            "ended": self.ended,
            "generation": self.generation,
            "fragments": self._fragments,
            "fragments_dropped": self._fragments_dropped,
            "segments_produced": self._segments_produced,
            "segments_held": len(self._segments),
            "segments_listed": len(listed),
            "segments_expired": self._segments_expired,
            "segments_evicted": self._segments_evicted,
            "playlist_duration": round(sum(s.duration for s in listed), 3),
            "media_sequence": listed[0].sequence if listed else self._next_sequence,
            "target_duration": self._target,
            "bytes_held": self.bytes_held,
            "open_fragments": len(self._open) if self._open else 0,
            "viewers": self._viewers + self._readers.count(self._clock()),
            "progressive_viewers": self._viewers,
            "follower_skips": self._follower_skips,
            "latest_fragment_time": self.latest_fragment_time(),
            # How old the live edge is: a frozen encoder shows here before any player stalls.
            "edge_age_seconds": None if self._edge_at is None else round(self._clock() - self._edge_at, 3),
        }


class _Finished(Exception):
    """The viewer has had all it will get from this generation."""


class Cursor:
    """One viewer's progressive fMP4: the init, then fragments from the latest keyframe on.

    Starts at the open segment's keyframe fragment (none yet: ``step`` has nothing). Finishes
    (after the fragments already received) when the generation changes or the stream ends: a
    progressive MP4 cannot carry a second init, so the client must reconnect. A viewer lagging
    more than ``follow_max_lag`` seconds jumps to the latest keyframe fragment.

    Counted as a viewer from creation until ``close`` (or finishing, or garbage collection).
    """

    def __init__(self, ring: SegmentRing) -> None:
        self._ring = ring
        self._generation: int | None = None
        self._next = 0
        self.skips = 0
        self.closed = False
        ring._viewers += 1

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ring._viewers -= 1

    def __del__(self) -> None:
        self.close()

    def step(self) -> bytes | None:
        """The next chunk; None if there is none yet (ask again after a change) or the viewer
        is finished (then ``closed`` is set)."""
        if self.closed:
            return None
        try:
            return self._advance()
        except _Finished:
            self.close()
            return None

    def _skip_to(self, index: int) -> None:
        self._next = index
        self.skips += 1
        self._ring._follower_skips += 1

    def _advance(self) -> bytes | None:
        ring = self._ring
        same_gen_open = ring._open is not None and ring._open[0].generation == self._generation
        if self._generation is None:
            if ring.ended:
                raise _Finished
            if ring._open is None:
                return None
            self._generation = ring._open[0].generation
            self._next = ring._open[0].index
            return ring._inits[self._generation].data
        log = ring._log
        base = log[0].index if log else ring._next_index
        if self._next < base:
            if not same_gen_open:
                raise _Finished
            self._skip_to(ring._open[0].index)
        if self._next - base < len(log):
            held = log[self._next - base]
            if held.generation != self._generation:
                raise _Finished
            if log[-1].received_at - held.received_at > ring.follow_max_lag:
                if same_gen_open and ring._open[0].index > self._next:
                    self._skip_to(ring._open[0].index)
                    held = log[self._next - base]
                elif log[-1].generation != self._generation:
                    raise _Finished
            self._next += 1
            return held.fragment.data
        if ring.ended or not ring._gen_open or ring._generation != self._generation:
            raise _Finished
        return None
