"""Fast checks of the benchmark's own arithmetic: CPU accounting over a changing process tree
and the time barcode (its figures are only as good as these)."""

from __future__ import annotations

import re

import pytest

from pagecast.bench import parse_sections
from pagecast.bench.measure import CpuAccount, component, percentile, table
from pagecast.bench.drive import STATIC, still_page


def test_cpu_account_counts_only_what_was_used_inside_the_window():
    acc = CpuAccount()
    old = (100, 1000.0)  # running before the window: counts from its first sample
    acc.add(2000.0, {old: 50.0})
    born = (200, 2000.5)  # started during the window: all of its CPU is ours
    late_seen = (300, 1500.0)  # existed before but first seen now: counts from this sample
    acc.add(2001.0, {old: 50.4, born: 0.3, late_seen: 7.0})
    acc.add(2002.0, {old: 50.9, late_seen: 7.2})  # 'born' exited: keeps its last sample
    assert acc.seconds == pytest.approx(0.9 + 0.3 + 0.2)
    assert acc.processes == 3
    assert acc.percent() == pytest.approx(100 * 1.4 / 2.0)
    groups = acc.by_group({old: "chromium", born: "ffmpeg", late_seen: "chromium"})
    assert groups == {"chromium": pytest.approx(55.0), "ffmpeg": pytest.approx(15.0)}


def test_cpu_account_treats_a_reused_pid_as_a_new_process():
    acc = CpuAccount()
    acc.add(10.0, {(7, 1.0): 5.0})
    acc.add(11.0, {(7, 10.5): 0.25})  # same pid, created inside the window
    assert acc.seconds == pytest.approx(0.25)


def test_empty_account_is_zero():
    assert CpuAccount().percent() == 0.0


def test_clock_page_and_watch_page_agree_with_the_barcode_constants():
    clock = (STATIC / "bench-clock.html").read_text()
    assert "BITS = 48, CELL = 24, REF_WIDTH = 1920" in clock
    watch = (STATIC / "watch.html").read_text()
    assert re.search(r"scale = w / 1920, cell = 24 \* scale", watch)
    assert "i < 48" in watch and "value * 2 + (lum < 128 ? 1 : 0)" in watch


def test_percentile_interpolates():
    assert percentile([], 50) is None
    assert percentile([3.0], 90) == 3.0
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile(list(range(11)), 90) == pytest.approx(9.0)


def test_sections_and_components():
    assert parse_sections("") == ["cpu", "idle", "ha", "fanout", "scale", "startup", "latency", "contexts", "cast", "encoders"]
    assert parse_sections("cpu, contexts") == ["cpu", "contexts"]
    with pytest.raises(ValueError, match="unknown section"):
        parse_sections("cpu,gpu")
    assert component("chromium-headle") == "chromium" and component("chrome_crashpad") == "chromium"
    assert component("python3.11") == "pagecast" and component("Xvfb") == "Xvfb" and component("ffmpeg") == "ffmpeg"


def test_table_aligns_numbers_right():
    text = table(["case", "CPU %"], [["a", "5.0"], ["bb", "12.5"]])
    lines = text.splitlines()
    assert lines[2].endswith(" 5.0") and lines[3].endswith("12.5")


# ---- change → stream: the barcode in recorded segments ------------------------------------------


def test_a_playlists_segments_come_with_their_date_and_init():
    from pagecast.bench.changes import parse_playlist

    text = "\n".join([
        "#EXTM3U", '#EXT-X-MAP:URI="init-0.mp4"', "#EXT-X-PROGRAM-DATE-TIME:2026-11-30T16:00:00.500Z", "#EXTINF:1.000,", "seg-7.m4s",
        "#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init-1.mp4"', "#EXT-X-PROGRAM-DATE-TIME:2026-11-30T16:00:01.500Z", "#EXTINF:1.000,", "seg-8.m4s",
    ])
    (pdt7, init7, seg7), (pdt8, init8, seg8) = parse_playlist(text)
    assert (init7, seg7, init8, seg8) == ("init-0.mp4", "seg-7.m4s", "init-1.mp4", "seg-8.m4s")
    assert pdt8 - pdt7 == pytest.approx(1.0)


def test_the_barcode_is_read_most_significant_bit_first_black_is_one():
    from pagecast.bench.changes import BITS, CELL, read_barcode

    value = 1_796_054_534_722
    row = bytearray()
    for i in range(BITS):
        bit = (value >> (BITS - 1 - i)) & 1
        row += bytes([10 if bit else 245]) * CELL
    assert read_barcode(bytes(row)) == value


def test_each_change_counts_from_its_first_frame_and_a_change_never_shown_is_missed():
    from pagecast.bench.changes import change_delays

    t = 1000.0
    frames = [(t + i / 10, int((t + (i - 1) // 10) * 1000)) for i in range(0, 50)]  # value changes each second, shown at +0.1 s
    frames = [(at, value) for at, value in frames if value != int((t + 3) * 1000)]  # the change at t+3 never shown
    result = change_delays(frames, [t + 1, t + 2, t + 3, t + 4.5])
    assert result["changes"] == 2 + 1  # t+1 and t+2 shown, t+3 missed; t+4.5 is past the recording's end
    assert result["missed"] == 1
    assert result["delays_ms"] == [pytest.approx(100.0, abs=1e-3), pytest.approx(100.0, abs=1e-3)]


def test_the_still_page_is_page_a_without_its_once_a_second_change():
    page_a = (STATIC / "bench-dashboard.html").read_text()
    still = still_page().decode()
    assert "setTimeout(function loop()" in page_a and "setTimeout" not in still
    assert "tick();" in still  # drawn once
    assert len(page_a.splitlines()) - len(still.splitlines()) == 1


def test_idle_means_average_each_part_over_the_rounds():
    from pagecast.bench.idle import mean_of

    runs = [{"cpu_pct": 4.0, "by_component": {"chromium": 1.0, "ffmpeg": 2.0}, "fps_captured": 0.0, "fps_encoded": 2.0, "other_pct": 10.0},
            {"cpu_pct": 6.0, "by_component": {"chromium": 2.0, "ffmpeg": 3.0, "pagecast": 1.0}, "fps_captured": 0.0, "fps_encoded": 2.0, "other_pct": 30.0}]
    mean = mean_of(runs)
    assert mean["cpu_pct"] == pytest.approx(5.0)
    assert mean["by_component"] == {"chromium": pytest.approx(1.5), "ffmpeg": pytest.approx(2.5), "pagecast": pytest.approx(0.5)}
    assert mean["fps_encoded"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "stalls, playing, share, ok",
    [(0, 10, 0.80, True), (0, 10, 0.85, True), (0, 10, 0.86, False), (1, 10, 0.5, False), (0, 9, 0.5, False)],
)
def test_a_scale_step_passes_with_no_stall_every_tv_playing_and_the_machine_at_most_85_percent_busy(stalls, playing, share, ok):
    from pagecast.bench.scale import passed

    assert passed({"stalls": stalls, "playing": playing, "tvs": 10, "run_share": share}) is ok


def test_fan_out_summary_holds_three_tvs_to_ten_percent_over_one_and_no_stall():
    from pagecast.bench.fanout import summary_rows

    def results(one, three, stalls=0):
        return {"fanout": {"1": [{"stalls": [0]}], "3": [{"stalls": [stalls, 0, 0]}], "1_mean": one, "3_mean": three, "ratio": three / one}}

    assert summary_rows(results(20.0, 21.0))[0][3] is True
    assert summary_rows(results(20.0, 23.0))[0][3] is False
    assert summary_rows(results(20.0, 21.0, stalls=1))[0][3] is False
    assert summary_rows({}) == []
