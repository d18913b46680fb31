"""/metrics: the tally behind it, as tables, and the endpoint against a real service and session,
read back with prometheus-client's own parser."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from pagecast.core.tally import PLAYING_BUCKETS, STARTUP_BUCKETS, SessionFigures, Tally, cumulative, device_stop_kind


@pytest.mark.parametrize(
    "reason, kind",
    [
        (None, None),
        ("stopped on the TV", "stopped"),
        ("the TV went to standby", "standby"),
        ("another app (YouTube) took over the TV", "other_app"),
        ("the TV's player ended the stream (FINISHED)", "finished"),
        ("something new", "other"),
    ],
)
def test_a_tvs_free_text_reason_becomes_one_of_a_few_label_values(reason, kind):
    assert device_stop_kind(reason) == kind


def test_the_tally_sums_sessions_and_puts_each_startup_in_its_bucket():
    t = Tally()
    t.add(SessionFigures(frames_captured=10, frames_encoded=30, restarts=(("renderer", "hang", 2),), startup_seconds=1.2, outcome="stopped"))
    t.add(SessionFigures(frames_captured=5, restarts=(("renderer", "hang", 1), ("encoder", "crash", 1)), startup_seconds=4.0,
                         playing_seconds=2.5, cast_reconnects=1, device_stop="standby", outcome="failed"))
    assert t.sessions == 2 and t.outcomes == {"stopped": 1, "failed": 1}
    assert t.frames["captured"] == 15 and t.frames["encoded"] == 30
    assert t.restarts == {("renderer", "hang"): 3, ("encoder", "crash"): 1}
    assert dict(cumulative(t.startup, STARTUP_BUCKETS))["1.5"] == 1 and dict(cumulative(t.startup, STARTUP_BUCKETS))["5.0"] == 2
    assert cumulative(t.startup, STARTUP_BUCKETS)[-1] == ("+Inf", 2) and t.startup_sum == pytest.approx(5.2)
    assert dict(cumulative(t.playing, PLAYING_BUCKETS))["3.0"] == 1 and t.cast_reconnects == 1 and t.device_stops == {"standby": 1}


def test_a_scrape_adds_the_kept_sessions_to_a_copy_and_never_to_the_retired_tally():
    retired = Tally()
    retired.add(SessionFigures(frames_captured=7, outcome="stopped"))
    scrape = retired.plus([SessionFigures(frames_captured=3)])
    assert scrape.frames["captured"] == 10 and scrape.sessions == 2
    assert retired.frames["captured"] == 7 and retired.sessions == 1


def _samples(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def test_metrics_follow_a_session_and_counters_survive_it_and_its_record(client, pages, monkeypatch):
    from pagecast.session import supervisor

    monkeypatch.setattr(supervisor, "ENDED_HISTORY", 0)  # an ended session is forgotten at the next start
    first = _samples((await client.get("/metrics")).text)
    assert first["pagecast_build_info{version=0.1.0}"] == 1 and first["pagecast_sessions{state=live}"] == 0
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    assert started["state"] == "live", started
    await trio.sleep(1.5)
    live = _samples((await client.get("/metrics")).text)
    assert live["pagecast_sessions{state=live}"] == 1 and live["pagecast_sessions_started_total"] == 1
    assert live["pagecast_session_startup_seconds_count"] == 1 and live["pagecast_frames_captured_total"] >= 1
    assert live["pagecast_children_cpu_seconds_total{kind=chromium}"] > 0 and live["pagecast_children_memory_bytes{kind=ffmpeg}"] > 0
    assert 0 <= live["pagecast_live_edge_age_seconds"] < 5
    assert live["pagecast_encoder_sessions{backend=libx264}"] == 1
    await client.post("/stop", json={"id": started["id"]})
    with trio.fail_after(15):
        while (await client.get(f"/sessions/{started['id']}")).json()["state"] != "stopped":
            await trio.sleep(0.1)
    after = _samples((await client.get("/metrics")).text)
    assert after["pagecast_sessions{state=live}"] == 0 and after["pagecast_sessions_ended_total{outcome=stopped}"] == 1
    for counter in ("pagecast_frames_captured_total", "pagecast_frames_encoded_total", "pagecast_children_cpu_seconds_total{kind=chromium}"):
        assert after[counter] >= live[counter], counter  # counters never go back, the session's processes gone or not
    assert "pagecast_live_edge_age_seconds" not in after
    second = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    assert (await client.get(f"/sessions/{started['id']}")).status_code == 404  # the first one's record is gone
    later = _samples((await client.get("/metrics")).text)
    assert later["pagecast_sessions_ended_total{outcome=stopped}"] == 1 and later["pagecast_sessions_started_total"] == 2
    assert later["pagecast_session_startup_seconds_count"] == 2
    assert later["pagecast_frames_captured_total"] >= after["pagecast_frames_captured_total"]
    await client.post("/stop", json={"id": second["id"]})


async def test_hls_players_are_viewers_alike_in_status_the_cli_and_metrics(client, service, pages):
    import contextlib
    import io

    from pagecast.cli import main

    started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p", "device": None})).json()
    assert started["state"] == "live", started
    sid = started["id"]
    for agent in ("CrKey/1.56 (a TV)", "hls.js in a browser"):  # two players, each fetching as HLS players do
        playlist = await client.get(f"/streams/{sid}/index.m3u8", headers={"User-Agent": agent})
        segment = playlist.text.strip().splitlines()[-1]
        assert (await client.get(f"/streams/{sid}/{segment}", headers={"User-Agent": agent})).status_code == 200
    status = (await client.get(f"/sessions/{sid}")).json()
    assert status["viewers"] == 2 and status["publisher"]["progressive_viewers"] == 0
    assert _samples((await client.get("/metrics")).text)["pagecast_viewers"] == 2
    out = io.StringIO()

    def cli() -> int:
        with contextlib.redirect_stdout(out):
            return main(["status", f"--server=http://127.0.0.1:{service.port}"])

    assert await trio.to_thread.run_sync(cli) == 0
    header, row = out.getvalue().splitlines()
    assert row[header.index("viewers"):].split()[0] == "2"
    with trio.fail_after(10):  # players that stop fetching stop counting, one window later
        while (await client.get(f"/sessions/{sid}")).json()["viewers"]:
            await trio.sleep(0.2)
    assert _samples((await client.get("/metrics")).text)["pagecast_viewers"] == 0
    await client.post("/stop", json={"id": sid})
