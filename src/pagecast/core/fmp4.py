"""Incremental reader for the fragmented MP4 that FFmpeg writes to a pipe.

I/O-free: bytes go in (in whatever chunks the pipe delivers), parsed init segments and
``moof``+``mdat`` fragments come out. Only what the publisher needs is decoded: track
kinds, timescales, codec strings, fragment timing and whether a fragment starts with a
video keyframe.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "Box",
    "BoxReader",
    "Fmp4Error",
    "Fmp4Splitter",
    "Fragment",
    "InitInfo",
    "TrackFragment",
    "TrackInfo",
    "iter_boxes",
    "parse_fragment",
    "parse_init",
]

SAMPLE_IS_NON_SYNC = 0x10000
DEFAULT_MAX_BOX_SIZE = 256 * 2**20


class Fmp4Error(ValueError):
    """The byte stream is not the fragmented MP4 we expect (or is corrupt)."""


@dataclass(frozen=True, slots=True)
class Box:
    """One complete top-level box, header included."""

    type: str
    data: bytes
    header_size: int

    @property
    def payload(self) -> bytes:
        return self.data[self.header_size:]


def _box_header(buf, pos: int, end: int) -> tuple[str, int, int] | None:
    """(type, header size, total size) of the box at ``pos``; None if the header is incomplete."""
    if end - pos < 8:
        return None
    size, raw_type = struct.unpack_from(">I4s", buf, pos)
    header = 8
    if size == 1:
        if end - pos < 16:
            return None
        (size,) = struct.unpack_from(">Q", buf, pos + 8)
        header = 16
    elif size == 0:
        raise Fmp4Error(f"box {raw_type!r} extends to end of file; unusable in a live stream")
    box_type = raw_type.decode("latin-1")
    if box_type == "uuid":
        header += 16
    if size < header:
        raise Fmp4Error(f"box {box_type!r} has impossible size {size}")
    return box_type, header, size


def iter_boxes(buf, start: int = 0, end: int | None = None):
    """Yield (type, payload start, payload end) for each child box in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        parsed = _box_header(buf, pos, end)
        if parsed is None:
            raise Fmp4Error(f"truncated box header at offset {pos}")
        box_type, header, size = parsed
        if pos + size > end:
            raise Fmp4Error(f"box {box_type!r} at offset {pos} overruns its parent")
        yield box_type, pos + header, pos + size
        pos += size


def _child(buf, start: int, end: int, wanted: str) -> tuple[int, int] | None:
    for box_type, s, e in iter_boxes(buf, start, end):
        if box_type == wanted:
            return s, e
    return None


class BoxReader:
    """Splits a byte stream into top-level boxes, however the bytes are chunked."""

    def __init__(self, max_box_size: int = DEFAULT_MAX_BOX_SIZE) -> None:
        self.max_box_size = max_box_size
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete box."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Box]:
        self._buf += data
        boxes: list[Box] = []
        pos = 0
        buf = self._buf
        try:
            while True:
                parsed = _box_header(buf, pos, len(buf))
                if parsed is None:
                    break
                box_type, header, size = parsed
                if size > self.max_box_size:
                    raise Fmp4Error(
                        f"box {box_type!r} claims {size} bytes (limit {self.max_box_size}); stream is corrupt"
                    )
                if len(buf) - pos < size:
                    break
                boxes.append(Box(box_type, bytes(buf[pos:pos + size]), header))
                pos += size
        finally:
            del buf[:pos]
        return boxes


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    kind: str
    """'video', 'audio', or the raw handler type for anything else."""
    timescale: int
    codec: str | None = None
    """RFC 6381 codec string (``avc1.64001f``, ``mp4a.40.2``) or the sample entry fourcc."""
    width: int | None = None
    height: int | None = None
    default_sample_duration: int = 0
    default_sample_flags: int = 0


@dataclass(frozen=True, slots=True)
class InitInfo:
    """An init segment (``ftyp`` + ``moov``) and what the fragments need from it."""

    data: bytes
    tracks: dict[int, TrackInfo] = field(default_factory=dict)

    def _first(self, kind: str) -> TrackInfo | None:
        return next((t for t in self.tracks.values() if t.kind == kind), None)

    @property
    def video(self) -> TrackInfo | None:
        return self._first("video")

    @property
    def audio(self) -> TrackInfo | None:
        return self._first("audio")

    @property
    def codecs(self) -> str:
        """Value for an HLS ``CODECS`` attribute, video first."""
        ordered = sorted(self.tracks.values(), key=lambda t: (t.kind != "video", t.track_id))
        return ",".join(t.codec for t in ordered if t.codec and t.kind in ("video", "audio"))


def _avc_codec(buf, start: int, end: int, fourcc: str) -> str:
    avcc = _child(buf, start, end, "avcC")
    if avcc is None or avcc[1] - avcc[0] < 4:
        return fourcc
    s = avcc[0]
    return f"{fourcc}.{buf[s + 1]:02x}{buf[s + 2]:02x}{buf[s + 3]:02x}"


def _descriptor(buf, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end) of an MPEG-4 descriptor (ISO 14496-1 expandable size)."""
    tag = buf[pos]
    pos += 1
    size = 0
    for _ in range(4):
        if pos >= end:
            raise Fmp4Error("truncated descriptor")
        b = buf[pos]
        pos += 1
        size = (size << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, pos, min(pos + size, end)


def _mp4a_codec(buf, start: int, end: int) -> str:
    esds = _child(buf, start, end, "esds")
    if esds is None:
        return "mp4a.40.2"
    try:
        tag, s, e = _descriptor(buf, esds[0] + 4, esds[1])
        if tag != 0x03:
            return "mp4a.40.2"
        flags = buf[s + 2]
        s += 3
        if flags & 0x80:
            s += 2
        if flags & 0x40:
            s += 1 + buf[s]
        if flags & 0x20:
            s += 2
        tag, s, e = _descriptor(buf, s, e)
        if tag != 0x04:
            return "mp4a.40.2"
        oti = buf[s]
        if oti != 0x40:
            return f"mp4a.{oti:02x}"
        tag, s, e = _descriptor(buf, s + 13, e)
        if tag != 0x05 or e <= s:
            return "mp4a.40"
        aot = buf[s] >> 3
        if aot == 31 and e - s >= 2:
            aot = 32 + (((buf[s] & 0x07) << 3) | (buf[s + 1] >> 5))
        return f"mp4a.40.{aot}"
    except (IndexError, Fmp4Error):
        return "mp4a.40.2"


def _sample_entry(buf, stsd: tuple[int, int], kind: str) -> tuple[str | None, int | None, int | None]:
    """Codec string, width, height from the first entry of an ``stsd``."""
    entries = iter_boxes(buf, stsd[0] + 8, stsd[1])
    first = next(entries, None)
    if first is None:
        return None, None, None
    fourcc, s, e = first
    if kind == "video" and e - s >= 78:
        width, height = struct.unpack_from(">HH", buf, s + 24)
        if fourcc in ("avc1", "avc3"):
            return _avc_codec(buf, s + 78, e, fourcc), width, height
        return fourcc, width, height
    if kind == "audio" and e - s >= 28:
        (version,) = struct.unpack_from(">H", buf, s + 8)
        children = s + 28 + {1: 16, 2: 36}.get(version, 0)
        if fourcc == "mp4a":
            return _mp4a_codec(buf, children, e), None, None
        return fourcc, None, None
    return fourcc, None, None


def parse_init(data: bytes) -> InitInfo:
    """Parse an init segment; ``data`` holds ``ftyp`` (optional) and ``moov``."""
    moov = None
    for box_type, s, e in iter_boxes(data):
        if box_type == "moov":
            moov = (s, e)
    if moov is None:
        raise Fmp4Error("init segment without moov")
    trex: dict[int, tuple[int, int]] = {}
    mvex = _child(data, *moov, "mvex")
    if mvex is not None:
        for box_type, s, e in iter_boxes(data, *mvex):
            if box_type == "trex" and e - s >= 24:
                track_id, _sdi, duration, _size, flags = struct.unpack_from(">5I", data, s + 4)
                trex[track_id] = (duration, flags)
    tracks: dict[int, TrackInfo] = {}
    for box_type, s, e in iter_boxes(data, *moov):
        if box_type != "trak":
            continue
        tkhd = _child(data, s, e, "tkhd")
        mdia = _child(data, s, e, "mdia")
        if tkhd is None or mdia is None:
            raise Fmp4Error("trak without tkhd or mdia")
        version = data[tkhd[0]]
        (track_id,) = struct.unpack_from(">I", data, tkhd[0] + (20 if version == 1 else 12))
        mdhd = _child(data, *mdia, "mdhd")
        hdlr = _child(data, *mdia, "hdlr")
        if mdhd is None or hdlr is None:
            raise Fmp4Error(f"track {track_id} without mdhd or hdlr")
        version = data[mdhd[0]]
        (timescale,) = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))
        if timescale == 0:
            raise Fmp4Error(f"track {track_id} has timescale 0")
        handler = data[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
        kind = {"vide": "video", "soun": "audio"}.get(handler, handler)
        codec = width = height = None
        minf = _child(data, *mdia, "minf")
        stbl = minf and _child(data, *minf, "stbl")
        stsd = stbl and _child(data, *stbl, "stsd")
        if stsd:
            codec, width, height = _sample_entry(data, stsd, kind)
        duration, flags = trex.get(track_id, (0, 0))
        tracks[track_id] = TrackInfo(track_id, kind, timescale, codec, width, height, duration, flags)
    if not tracks:
        raise Fmp4Error("moov without tracks")
    return InitInfo(bytes(data), tracks)


@dataclass(frozen=True, slots=True)
class TrackFragment:
    """One track's run of samples within a fragment, in that track's timescale."""

    track_id: int
    decode_time: int | None
    """tfdt baseMediaDecodeTime; None when the fragment carries no tfdt."""
    duration: int
    samples: int
    first_sample_flags: int | None


def _parse_traf(buf, start: int, end: int, init: InitInfo) -> TrackFragment:
    tfhd = _child(buf, start, end, "tfhd")
    if tfhd is None:
        raise Fmp4Error("traf without tfhd")
    s = tfhd[0]
    flags = int.from_bytes(buf[s + 1:s + 4], "big")
    (track_id,) = struct.unpack_from(">I", buf, s + 4)
    track = init.tracks.get(track_id)
    if track is None:
        raise Fmp4Error(f"fragment refers to unknown track {track_id}")
    pos = s + 8
    if flags & 0x1:
        pos += 8
    if flags & 0x2:
        pos += 4
    default_duration = track.default_sample_duration
    default_flags = track.default_sample_flags
    if flags & 0x8:
        (default_duration,) = struct.unpack_from(">I", buf, pos)
        pos += 4
    if flags & 0x10:
        pos += 4
    if flags & 0x20:
        (default_flags,) = struct.unpack_from(">I", buf, pos)

    decode_time = None
    duration = samples = 0
    first_flags: int | None = None
    for box_type, s, e in iter_boxes(buf, start, end):
        if box_type == "tfdt":
            if buf[s] == 1:
                (decode_time,) = struct.unpack_from(">Q", buf, s + 4)
            else:
                (decode_time,) = struct.unpack_from(">I", buf, s + 4)
        elif box_type == "trun":
            tr_flags = int.from_bytes(buf[s + 1:s + 4], "big")
            (count,) = struct.unpack_from(">I", buf, s + 4)
            pos = s + 8
            if tr_flags & 0x1:
                pos += 4
            run_first_flags = None
            if tr_flags & 0x4:
                (run_first_flags,) = struct.unpack_from(">I", buf, pos)
                pos += 4
            fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if tr_flags & bit]
            stride = 4 * len(fields)
            if pos + stride * count > e:
                raise Fmp4Error("trun overruns its box")
            if 0x100 in fields:
                offset = fields.index(0x100) * 4
                duration += sum(
                    struct.unpack_from(">I", buf, pos + i * stride + offset)[0] for i in range(count)
                )
            else:
                duration += default_duration * count
            if first_flags is None and count:
                if run_first_flags is not None:
                    first_flags = run_first_flags
                elif 0x400 in fields:
                    (first_flags,) = struct.unpack_from(">I", buf, pos + fields.index(0x400) * 4)
                else:
                    first_flags = default_flags
            samples += count
    return TrackFragment(track_id, decode_time, duration, samples, first_flags)


def parse_fragment(data: bytes, init: InitInfo) -> tuple[int, list[TrackFragment]]:
    """(mfhd sequence number, per-track runs) of a ``moof`` (optionally followed by its ``mdat``)."""
    moof = None
    for box_type, s, e in iter_boxes(data):
        if box_type == "moof":
            moof = (s, e)
            break
    if moof is None:
        raise Fmp4Error("fragment without moof")
    sequence = 0
    trafs: list[TrackFragment] = []
    for box_type, s, e in iter_boxes(data, *moof):
        if box_type == "mfhd":
            (sequence,) = struct.unpack_from(">I", data, s + 4)
        elif box_type == "traf":
            trafs.append(_parse_traf(data, s, e, init))
    return sequence, trafs


@dataclass(frozen=True, slots=True)
class Fragment:
    """One ``moof``+``mdat`` pair.

    The ``video_*`` fields describe the video track (or, in a stream without video, its
    first track); times are seconds on that track's timeline.
    """

    data: bytes
    sequence: int
    keyframe: bool
    """The video run starts with a sync sample, so a segment or a viewer may start here."""
    video_start: float | None
    video_duration: float
    video_samples: int
    tracks: tuple[TrackFragment, ...] = ()

    @property
    def video_end(self) -> float | None:
        return None if self.video_start is None else self.video_start + self.video_duration


def _guarded(parse, *args):
    """Truncated fields inside a well-framed box surface as Fmp4Error, like every other defect."""
    try:
        return parse(*args)
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise Fmp4Error(f"malformed box: {e}") from e


class Fmp4Splitter:
    """Turns FFmpeg's fMP4 byte stream into ``InitInfo`` and ``Fragment`` objects.

    A new ``ftyp``/``moov`` mid-stream starts over with a new init. Boxes that carry nothing
    for live delivery (``free``, ``sidx``, ``mfra``, ``styp`` …) are dropped.
    """

    def __init__(self, max_box_size: int = DEFAULT_MAX_BOX_SIZE) -> None:
        self._reader = BoxReader(max_box_size)
        self.init: InitInfo | None = None
        self._ftyp: bytes | None = None
        self._moof: bytes | None = None
        self._next_decode: dict[int, int] = {}

    def reset(self) -> None:
        """Forget everything, e.g. because a new encoder process writes from now on."""
        self._reader.reset()
        self.init = None
        self._ftyp = None
        self._moof = None
        self._next_decode.clear()

    @property
    def pending(self) -> int:
        return self._reader.pending + (len(self._moof) if self._moof else 0)

    def feed(self, data: bytes) -> list[InitInfo | Fragment]:
        out: list[InitInfo | Fragment] = []
        for box in self._reader.feed(data):
            if box.type == "ftyp":
                self._ftyp = box.data
                self._moof = None
            elif box.type == "moov":
                self.init = _guarded(parse_init, (self._ftyp or b"") + box.data)
                self._ftyp = None
                self._moof = None
                self._next_decode.clear()
                out.append(self.init)
            elif box.type == "moof":
                if self.init is None:
                    raise Fmp4Error("moof before any init segment")
                if self._moof is not None:
                    raise Fmp4Error("moof without mdat")
                self._moof = box.data
            elif box.type == "mdat":
                if self._moof is None:
                    raise Fmp4Error("mdat without moof")
                out.append(self._fragment(self._moof + box.data))
                self._moof = None
        return out

    def _fragment(self, data: bytes) -> Fragment:
        init = self.init
        assert init is not None
        sequence, trafs = _guarded(parse_fragment, data, init)
        ref = init.video or next(iter(init.tracks.values()))
        start: float | None = None
        duration = 0.0
        samples = 0
        keyframe = False
        for traf in trafs:
            decode_time = traf.decode_time
            if decode_time is None:
                decode_time = self._next_decode.get(traf.track_id, 0)
            self._next_decode[traf.track_id] = decode_time + traf.duration
            if traf.track_id == ref.track_id and traf.samples:
                if start is None:
                    start = decode_time / ref.timescale
                    keyframe = not (traf.first_sample_flags or 0) & SAMPLE_IS_NON_SYNC
                duration += traf.duration / ref.timescale
                samples += traf.samples
        return Fragment(data, sequence, keyframe, start, duration, samples, tuple(trafs))


def free_box(size: int) -> bytes:
    """An MP4 ``free`` box of exactly ``size`` bytes (at least 8): demuxers skip it."""
    size = max(size, 8)
    return size.to_bytes(4, "big") + b"free" + bytes(size - 8)
