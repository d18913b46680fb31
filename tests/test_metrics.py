"""/metrics: the tally behind it, as tables, and the endpoint against a real service and session,
read back with prometheus-client's own parser."""

from __future__ import annotations

import contextlib
import os
import signal

import httpx
import psutil
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from pagecast.core.tally import PLAYING_BUCKETS, STARTUP_BUCKETS, ScreenFigures, SessionFigures, Tally, cumulative, device_stop_kind


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


def test_a_screen_counts_by_its_tvs_name_and_every_screen_of_a_session_is_summed_per_tv():
    t = Tally()
    t.add(SessionFigures(screens=(ScreenFigures("Kitchen", stalls=1, casts=1), ScreenFigures("Kitchen", reconnects=2, casts=1),
                                  ScreenFigures("Hall", casts=1))))
    assert t.devices == ["Hall", "Kitchen"]
    assert t.screen_stalls == {"Kitchen": 1, "Hall": 0} and t.screen_reconnects == {"Kitchen": 2, "Hall": 0}
    assert t.screen_casts == {"Kitchen": 2, "Hall": 1}
    copy = t.plus([SessionFigures(screens=(ScreenFigures.of({"device": "Hall", "stalls": 3, "reconnects": 0, "casts": 1}),))])
    assert copy.screen_stalls["Hall"] == 3 and t.screen_stalls["Hall"] == 0


def test_every_screen_a_tv_ended_is_a_device_stop_even_when_its_session_went_on():
    t = Tally()
    t.add(SessionFigures(device_stop="standby", screens=(
        ScreenFigures.of({"device": "Hall", "stopped_by_device": "stopped on the TV"}), ScreenFigures.of({"device": "Den"}),
        ScreenFigures.of({"device": "Kitchen", "stopped_by_device": "the TV went to standby"}))))
    t.add(SessionFigures(device_stop="other_app"))  # known without its screens: its own
    assert t.device_stops == {"stopped": 1, "standby": 1, "other_app": 1}


def _tv_players() -> set[int]:
    """The virtual TVs' FFmpeg players (they run in this process; they read the stream over http)."""
    found = set()
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = p.cmdline()
            if cmd and "ffmpeg" in os.path.basename(cmd[0]) and any(a.startswith("http://") for a in cmd):
                found.add(p.pid)
    return found


@pytest.mark.slow
async def test_each_tv_of_a_session_has_its_screen_series_and_they_outlive_the_screen_and_the_session(nursery, tmp_path, pages, monkeypatch):
    """Two virtual TVs show one session. Each TV's series is labelled by its name: the TV whose
    player stalls and whose network drops counts a stall and a reconnect, the other none;
    stopped on its remote it plays 0 and keeps its counts; the session ended and forgotten,
    every count stays."""
    from helpers import lo, running_service

    from pagecast.session import supervisor
    from pagecast.virtual_tv import open_virtual_tv

    monkeypatch.setattr(supervisor, "ENDED_HISTORY", 0)  # an ended session is forgotten at the next start
    async with open_virtual_tv(host=lo("127.0.0.61"), name="Hall TV", player="ffmpeg") as hall, \
            open_virtual_tv(host=lo("127.0.0.62"), name="Kitchen TV", player="ffmpeg") as kitchen, \
            running_service(nursery, tmp_path, cast_hosts=(lo("127.0.0.61"), lo("127.0.0.62")), cast_liveness_interval=0.5, cast_liveness_timeout=1.0,
                            cast_connect_timeout=2.0, cast_give_up=30.0, cast_backoff_max=1.0, quality="720p") as svc, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=60) as api:

        async def metrics() -> dict[str, float]:
            return _samples((await api.get("/metrics")).text)

        async def until(predicate, timeout: float = 20.0) -> dict:
            with trio.fail_after(timeout):
                while True:
                    status = (await api.get(f"/sessions/{sid}")).json()
                    if predicate({s["device"]: s for s in status["screens"] if s["ended"] is None}):
                        return status
                    await trio.sleep(0.1)

        before = await metrics()
        assert before["pagecast_screens"] == 0 and not [k for k in before if k.startswith("pagecast_screen_")]
        started = (await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": "Hall TV"})).json()
        assert started["state"] == "live", started
        sid = started["id"]
        players = _tv_players()
        added = await api.post(f"/sessions/{sid}/screens?wait=1", json={"device": "Kitchen TV"})
        assert added.status_code == 202, added.text
        await until(lambda on: on.keys() == {"Hall TV", "Kitchen TV"} and all(s["state"] == "playing" for s in on.values()))
        on = await metrics()
        assert on["pagecast_screens"] == 1 + 1
        assert on["pagecast_screen_playing{device=Hall TV}"] == 1 and on["pagecast_screen_playing{device=Kitchen TV}"] == 1
        assert on["pagecast_screen_casts_total{device=Hall TV}"] == 1 and on["pagecast_screen_casts_total{device=Kitchen TV}"] == 1
        assert on["pagecast_screen_stalls_total{device=Kitchen TV}"] == 0 and on["pagecast_screen_reconnects_total{device=Kitchen TV}"] == 0
        assert not [k for k in on if sid in k]  # no series names a session

        (kitchen_player,) = _tv_players() - players  # the Kitchen TV's player: stopped, it shows no progress: a stall
        await kitchen.wait_for(lambda st: st["player_state"] == "PLAYING", timeout=10)
        os.kill(kitchen_player, signal.SIGSTOP)
        try:
            await until(lambda on: on["Kitchen TV"]["stalls"] == 1, timeout=10)
        finally:
            os.kill(kitchen_player, signal.SIGCONT)
        kitchen.drop_network("silent")  # past the liveness timeout, short of the give-up
        try:
            await until(lambda on: on["Kitchen TV"]["state"] == "reconnecting", timeout=10)
        finally:
            kitchen.restore_network()
        await until(lambda on: on["Kitchen TV"]["reconnects"] == 1 and on["Kitchen TV"]["state"] == "playing")
        hurt = await metrics()
        assert hurt["pagecast_screen_stalls_total{device=Kitchen TV}"] == 1 and hurt["pagecast_screen_reconnects_total{device=Kitchen TV}"] == 1
        # The Hall TV's series are its own: what its player went through (on a busy machine a
        # player may stall of itself), not the Kitchen TV's.
        assert hurt["pagecast_screen_stalls_total{device=Hall TV}"] == hall.state()["stats"]["stalls"]
        assert hurt["pagecast_screen_reconnects_total{device=Hall TV}"] == 0
        assert hurt["pagecast_screen_reconnects_total{device=Kitchen TV}"] <= hurt["pagecast_cast_reconnects_total"]

        kitchen.remote_stop()
        await until(lambda on: on.keys() == {"Hall TV"})
        left = await metrics()
        assert left["pagecast_screens"] == 1 and left["pagecast_screen_playing{device=Kitchen TV}"] == 0
        assert left["pagecast_screen_playing{device=Hall TV}"] == 1 and left["pagecast_screen_stalls_total{device=Kitchen TV}"] == 1
        assert left["pagecast_device_stops_total{reason=stopped}"] == 1 and left["pagecast_cast_sessions"] == 1

        await api.post("/stop", json={"id": sid})
        with trio.fail_after(15):
            while (await api.get(f"/sessions/{sid}")).json()["state"] != "stopped":
                await trio.sleep(0.1)
        second = (await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": None})).json()
        assert (await api.get(f"/sessions/{sid}")).status_code == 404  # the first session is forgotten
        later = await metrics()
        assert later["pagecast_screens"] == 0
        assert later["pagecast_screen_playing{device=Hall TV}"] == 0 and later["pagecast_screen_playing{device=Kitchen TV}"] == 0
        for key, value in hurt.items():
            if key.startswith(("pagecast_screen_stalls_total", "pagecast_screen_reconnects_total", "pagecast_screen_casts_total")):
                assert later[key] >= value, key  # counters never go back
        assert later["pagecast_screen_stalls_total{device=Kitchen TV}"] == 1 and later["pagecast_screen_casts_total{device=Hall TV}"] == 1
        assert later["pagecast_device_stops_total{reason=stopped}"] == 1 and later["pagecast_cast_sessions"] == 0
        await api.post("/stop", json={"id": second["id"]})
