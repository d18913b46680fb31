"""The chaos harness: its conclusions from samples (tables, no clock), and a short run of
its scenarios against a real pagecast serve and virtual TVs, as CI's subset of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import lo
from pagecast.lowlevel.binaries import find_chromium
from pagecast.chaos.gaps import Gaps, Stalls, growth, overlaps, percentile
from pagecast.chaos.report import Row, cells


def samples(gaps: Gaps, values: list[tuple[float, object]]) -> Gaps:
    for now, value in values:
        gaps.observe(now, value)
    return gaps


@pytest.mark.parametrize(
    ("values", "end", "expected"),
    [
        ([(0.0, 1), (0.1, 2), (0.2, 3)], 0.3, []),  # always moving
        ([(0.0, 1), (0.1, 1), (0.9, 1), (1.0, 2)], 1.0, [(0.0, 1.0)]),  # stood still 1 s
        ([(0.0, 1), (0.3, 1), (0.4, 2)], 0.4, []),  # shorter than the threshold
        ([(0.0, 5), (2.0, 0), (2.1, 1)], 2.1, [(0.0, 2.0)]),  # a counter that restarts is a change
        ([(0.0, 1), (0.1, 2), (3.0, 2)], 3.0, [(0.1, 3.0)]),  # still frozen at the end counts
    ],
)
def test_a_freeze_is_a_stretch_without_change(values, end, expected):
    gaps = samples(Gaps(threshold=0.5), values)
    gaps.close(end)
    assert gaps.gaps == expected


def test_a_freeze_seen_as_the_age_of_the_newest_change_is_one_stretch_however_often_sampled():
    gaps = Gaps(threshold=0.5)
    for now, age in [(1.0, 0.1), (2.0, 0.6), (2.25, 0.85), (2.5, 1.1), (2.75, 0.05), (5.0, 0.7)]:
        gaps.observe_age(now, age)
    assert [(round(a, 2), round(b, 2)) for a, b in gaps.gaps] == [(1.4, 2.5), (4.3, 5.0)]
    assert round(gaps.longest(), 2) == 1.1


def test_a_paused_watch_does_not_count_the_pause_as_a_freeze():
    gaps = samples(Gaps(threshold=0.5), [(0.0, 1), (0.1, 2)])
    gaps.pause()
    samples(gaps, [(10.0, 2), (10.1, 3)])
    assert gaps.gaps == []


def test_freezes_are_chosen_inside_or_outside_fault_windows():
    gaps = Gaps(gaps=[(1.0, 2.0), (10.0, 13.0), (20.0, 20.6)])
    windows = [(9.5, 15.0)]
    assert gaps.longest() == 3.0
    assert gaps.longest(within=windows) == 3.0
    assert gaps.longest(outside=windows) == 1.0
    assert gaps.longest(within=[]) == 0.0
    assert overlaps((1, 2), (1.5, 3)) and not overlaps((1, 2), (2, 3))


def test_stalls_count_rises_only_and_can_be_excused_by_a_window():
    stalls = Stalls()
    for now, value in [(0, 0), (1, 1), (2, 1), (3, 0), (4, 2), (5, 2)]:
        stalls.observe(now, value)
    assert stalls.times == [1, 4, 4]  # the drop to 0 is a new media session, not a stall
    assert stalls.count() == 3
    assert stalls.count(outside=[(3.5, 4.5)]) == 1


@pytest.mark.parametrize(("values", "q", "expected"), [([], 50, None), ([3.0], 95, 3.0), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 95, 4), ([5, 1, 4, 2, 3], 100, 5)])
def test_percentiles_are_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


def test_growth_is_relative_and_unknown_without_a_start():
    assert growth(100, 105) == pytest.approx(0.05)
    assert growth(None, 5) is None and growth(0, 5) is None


def test_a_row_passes_only_without_failures_and_with_every_criterion_met():
    row = Row("x", runs=2, recoveries=[1.0, 2.0], freeze=0.4, stalls=0, left=0)
    row.check("nothing left", True)
    assert row.passed and cells(row)[-1] == "yes"
    row.check("freeze ≤ 0.1 s", False)
    assert not row.passed and cells(row)[-1] == "NO"
    assert not Row("y", failures=["boom"]).passed
    data = row.to_dict()
    assert data["recovery_p50"] == 1.0 and data["recovery_p95"] == 2.0 and data["passed"] is False


def test_a_tvs_screen_is_the_one_still_on_else_the_last_it_had():
    from types import SimpleNamespace

    from pagecast.chaos.scenarios import _on, _screen

    tv = SimpleNamespace(host="127.0.0.33")
    first = {"address": "127.0.0.33", "since": "a", "ended": "stopped on the TV"}
    again = {"address": "127.0.0.33", "since": "b", "ended": None}
    other = {"address": "127.0.0.32", "since": "a", "ended": None}
    assert _screen({"screens": [first, other, again]}, tv) is again and _on({"screens": [first, other, again]}, tv) is again
    assert _screen({"screens": [first, other]}, tv) is first and _on({"screens": [first, other]}, tv) is None
    assert _screen({"screens": [other]}, tv) is None and _screen({}, tv) is None


def test_tv_hosts_must_be_three_loopback_addresses():
    out = subprocess.run([sys.executable, "-m", "pagecast", "chaos", "--tv-hosts", "192.168.1.5,127.0.0.2"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--tv-hosts takes 3 loopback addresses" in out.stderr


def test_an_unknown_scenario_is_refused_with_the_list():
    out = subprocess.run([sys.executable, "-m", "pagecast", "chaos", "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "unknown scenario nope" in out.stderr and "cycles" in out.stderr


needs_parts = pytest.mark.skipif(
    not (shutil.which(find_chromium()) and shutil.which("ffmpeg")), reason="needs Chromium's headless shell and FFmpeg",
)


@pytest.mark.slow
@needs_parts
@pytest.mark.timeout(170)
def test_ci_subset_heals_every_fault_and_leaves_nothing(tmp_path):
    """CI's subset: SIGKILL of each child while casting to a Shaka TV. Its row is printed and
    every pass criterion must hold. (Start/stop leaving nothing is every casting test's own
    check, conftest's; the TV ending a cast is tests/test_cast.py's.)"""
    report, logs = tmp_path / "chaos.json", tmp_path / "logs"
    out = subprocess.run(
        [sys.executable, "-m", "pagecast", "chaos", "--quick", "--only", "kill", "--seed", "7", "--json", str(report), "--logs", str(logs),
         "--tv-hosts", ",".join(lo(h) for h in ("127.0.0.41", "127.0.0.42", "127.0.0.43"))],  # not the defaults: a run by hand may be going on
        capture_output=True, text=True, timeout=160, stdin=subprocess.DEVNULL, env={**os.environ, "PAGECAST_API_TOKEN": ""},
    )
    rows = json.loads(report.read_text()) if report.exists() else []
    tails = "".join(f"\n--- {log.name}, its end:\n" + "\n".join(log.read_text().splitlines()[-40:]) for log in sorted(logs.glob("*.log")))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + tails
    assert [r["scenario"][:2] for r in rows] == ["2."]
    assert all(r["passed"] and r["left"] == 0 and r["runs"] > 0 for r in rows), rows
    [kills] = rows
    assert len(kills["recoveries"]) == 3 and kills["freeze"] is not None
    assert "procs left" in out.stdout and "all scenarios passed" in out.stdout
