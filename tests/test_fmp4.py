import random
import shutil
import struct

import pytest

from pagecast.core.fmp4 import (
    BoxReader,
    Fmp4Error,
    Fmp4Splitter,
    Fragment,
    InitInfo,
    TrackInfo,
    parse_init,
)

from helpers import ffmpeg_fmp4

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture(scope="module")
def dense() -> bytes:
    return ffmpeg_fmp4(6, 10, "320x180")


@pytest.fixture(scope="module")
def sparse() -> bytes:
    return ffmpeg_fmp4(4, 2)


def box(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def full_box(kind: str, flags: int, payload: bytes, version: int = 0) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def split(data: bytes) -> tuple[InitInfo, list[Fragment]]:
    items = Fmp4Splitter().feed(data)
    assert isinstance(items[0], InitInfo)
    return items[0], items[1:]


def test_init_identifies_video_and_audio_tracks(dense):
    init, _ = split(dense)
    assert init.video is not None and init.audio is not None
    assert init.video.kind == "video" and init.audio.kind == "audio"
    assert init.audio.timescale == 48000
    assert init.video.timescale > 0
    assert (init.video.width, init.video.height) == (320, 180)
    assert init.video.codec.startswith("avc1.") and len(init.video.codec) == len("avc1.64001f")
    assert init.audio.codec == "mp4a.40.2"
    assert init.codecs == f"{init.video.codec},mp4a.40.2"
    assert init.data.startswith(dense[:8]) and b"moov" in init.data


def test_keyframe_fragments_start_every_forced_keyframe(dense):
    _, frags = split(dense)
    keys = [f for f in frags if f.keyframe]
    assert frags[0].keyframe
    assert len(keys) == 6
    assert [round(f.video_start) for f in keys] == [0, 1, 2, 3, 4, 5]
    assert sum(f.video_samples for f in frags) == 60
    assert all(f.sequence == i + 1 for i, f in enumerate(frags))


def test_fragment_video_times_are_contiguous(dense):
    _, frags = split(dense)
    for a, b in zip(frags, frags[1:]):
        assert b.video_start == pytest.approx(a.video_end, abs=1e-6)


def test_audio_only_fragments_of_sparse_video_are_not_keyframes(sparse):
    _, frags = split(sparse)
    audio_only = [f for f in frags if f.video_samples == 0]
    assert audio_only, "a 2 fps stream with 100 ms fragments has audio-only fragments"
    assert all(not f.keyframe and f.video_start is None for f in audio_only)
    assert [round(f.video_start) for f in frags if f.keyframe] == [0, 1, 2, 3]


def test_boxes_split_across_arbitrary_chunks(dense):
    whole = Fmp4Splitter().feed(dense)
    rng = random.Random(1)
    for max_chunk in (1, 7, 4096):
        splitter = Fmp4Splitter()
        items, pos = [], 0
        while pos < len(dense):
            n = rng.randint(1, max_chunk)
            items += splitter.feed(dense[pos:pos + n])
            pos += n
        assert [i.data for i in items] == [i.data for i in whole]
        assert splitter.pending == 0
    total = sum(len(i.data) for i in whole)
    assert dense[:total] == b"".join(i.data for i in whole)  # only the trailing mfra is dropped


def test_box_reader_keeps_incomplete_box_pending():
    reader = BoxReader()
    data = box("free", b"x" * 100)
    assert reader.feed(data[:50]) == []
    assert reader.pending == 50
    (got,) = reader.feed(data[50:] + data[:3])
    assert got.type == "free" and got.payload == b"x" * 100
    assert reader.pending == 3


def test_largesize_box_is_supported():
    payload = b"abc" * 10
    big = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    reader = BoxReader()
    assert reader.feed(big[:12]) == []  # largesize itself still incomplete
    (got,) = reader.feed(big[12:])
    assert got.type == "mdat" and got.header_size == 16 and got.payload == payload


def test_absurd_box_size_is_rejected():
    with pytest.raises(Fmp4Error, match="claims"):
        BoxReader(max_box_size=2**20).feed(struct.pack(">I4s", 2**31, b"mdat"))
    with pytest.raises(Fmp4Error, match="claims"):
        BoxReader().feed(struct.pack(">I4sQ", 1, b"mdat", 2**40))


def test_impossible_and_unbounded_box_sizes_are_rejected():
    with pytest.raises(Fmp4Error):
        BoxReader().feed(struct.pack(">I4s", 4, b"moof"))
    with pytest.raises(Fmp4Error):
        BoxReader().feed(struct.pack(">I4s", 0, b"mdat"))


def test_fragment_before_init_is_rejected(dense):
    _, frags = split(dense)
    with pytest.raises(Fmp4Error):
        Fmp4Splitter().feed(frags[0].data)


def test_malformed_fragment_raises_fmp4error():
    moof = box("moof", full_box("mfhd", 0, struct.pack(">I", 1)) + box("traf", full_box("tfhd", 0, b"\0\0")))
    with pytest.raises(Fmp4Error):
        synthetic_splitter(SYNC).feed(moof + box("mdat", b""))


def test_new_init_mid_stream_is_reported_again(dense):
    items = Fmp4Splitter().feed(dense + dense)
    inits = [i for i, item in enumerate(items) if isinstance(item, InitInfo)]
    assert inits == [0, len(items) // 2]


def test_unrelated_top_level_boxes_are_ignored(dense):
    init, frags = split(dense)
    stream = box("free", b"") + init.data + box("styp", b"msdh") + frags[0].data + box("prft", b"\0" * 16)
    items = Fmp4Splitter().feed(stream)
    assert [type(i) for i in items] == [InitInfo, Fragment]


def test_parse_init_rejects_missing_moov():
    with pytest.raises(Fmp4Error):
        parse_init(box("ftyp", b"isom\0\0\0\0"))


def synthetic_fragment(*, tfhd_flags=0, tfhd_extra=b"", trun_flags=0, trun_extra=b"", samples=b"", count=2,
                       tfdt_version=1, decode_time=5000) -> bytes:
    tfdt = struct.pack(">Q", decode_time) if tfdt_version == 1 else struct.pack(">I", decode_time)
    traf = box("traf", (
        full_box("tfhd", 0x020000 | tfhd_flags, struct.pack(">I", 1) + tfhd_extra)
        + full_box("tfdt", 0, tfdt, version=tfdt_version)
        + full_box("trun", trun_flags, struct.pack(">I", count) + trun_extra + samples)
    ))
    moof = box("moof", full_box("mfhd", 0, struct.pack(">I", 42)) + traf)
    return moof + box("mdat", b"\0" * 8)


def synthetic_splitter(trex_flags: int) -> Fmp4Splitter:
    splitter = Fmp4Splitter()
    splitter.init = InitInfo(b"", {1: TrackInfo(1, "video", 1000, None, None, None, 40, trex_flags)})
    return splitter


SYNC, NON_SYNC = 0x02000000, 0x01010000


@pytest.mark.parametrize("first_flags,expected", [(SYNC, True), (NON_SYNC, False)])
def test_keyframe_from_trun_first_sample_flags(first_flags, expected):
    data = synthetic_fragment(trun_flags=0x4, trun_extra=struct.pack(">I", first_flags))
    (frag,) = synthetic_splitter(NON_SYNC if expected else SYNC).feed(data)
    assert frag.keyframe is expected
    assert frag.sequence == 42
    assert frag.video_start == 5.0 and frag.video_duration == pytest.approx(0.08)  # trex duration 40


@pytest.mark.parametrize("first_flags,expected", [(SYNC, True), (NON_SYNC, False)])
def test_keyframe_from_per_sample_flags(first_flags, expected):
    samples = struct.pack(">IIII", 30, first_flags, 50, NON_SYNC)
    data = synthetic_fragment(trun_flags=0x100 | 0x400, samples=samples, tfdt_version=0)
    (frag,) = synthetic_splitter(NON_SYNC if expected else SYNC).feed(data)
    assert frag.keyframe is expected
    assert frag.video_duration == pytest.approx(0.08) and frag.video_samples == 2


@pytest.mark.parametrize("default_flags,expected", [(SYNC, True), (NON_SYNC, False)])
def test_keyframe_from_tfhd_default_flags(default_flags, expected):
    data = synthetic_fragment(tfhd_flags=0x8 | 0x20, tfhd_extra=struct.pack(">II", 100, default_flags))
    (frag,) = synthetic_splitter(NON_SYNC if expected else SYNC).feed(data)
    assert frag.keyframe is expected
    assert frag.video_duration == pytest.approx(0.2)


@pytest.mark.parametrize("trex_flags,expected", [(SYNC, True), (NON_SYNC, False)])
def test_keyframe_from_trex_default_flags(trex_flags, expected):
    (frag,) = synthetic_splitter(trex_flags).feed(synthetic_fragment())
    assert frag.keyframe is expected
