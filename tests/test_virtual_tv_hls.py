"""The virtual TV's FFmpeg player joins a live HLS stream as a receiver's engine does: its
HOLD-BACK behind the live edge, once the playlist holds that much."""

from __future__ import annotations

from pagecast.virtual_tv.hls import first_variant, parse_live


def _playlist(segments: int, *, hold_back: float | None = 3.0, target: int = 1, ended: bool = False) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}"]
    if hold_back is not None:
        lines.append(f"#EXT-X-SERVER-CONTROL:HOLD-BACK={hold_back:.3f}")
    lines += ["#EXT-X-MEDIA-SEQUENCE:0", '#EXT-X-MAP:URI="init-0.mp4"']
    for n in range(segments):
        lines += [f"#EXTINF:{target:.3f},", f"seg-{n}.m4s"]
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if ended else [])) + "\n"


def test_a_young_stream_is_not_joined_until_it_holds_the_hold_back():
    assert parse_live(_playlist(1)).segments_back() is None
    assert parse_live(_playlist(2)).segments_back() is None
    assert parse_live(_playlist(3)).segments_back() == 3


def test_a_grown_stream_is_joined_the_hold_back_behind_its_newest_segment():
    assert parse_live(_playlist(40)).segments_back() == 3
    assert parse_live(_playlist(40, hold_back=4.5)).segments_back() == 5


def test_without_a_hold_back_three_target_durations_are_held_back():
    assert parse_live(_playlist(10, hold_back=None, target=2)).segments_back() == 3


def test_a_finished_playlist_is_no_live_stream():
    assert parse_live(_playlist(5, ended=True)) is None


def test_a_multivariant_playlist_leads_to_its_first_stream():
    text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nvideo/index.m3u8\n"
    assert first_variant(text, "http://127.0.0.1:1/s/x/master.m3u8") == "http://127.0.0.1:1/s/x/video/index.m3u8"
    assert first_variant(_playlist(3), "http://127.0.0.1:1/s/x/index.m3u8") is None
