"""Casting end to end: pagecast → pychromecast → CASTV2 over TLS → the virtual TV → a real
player. The TV ends sessions by itself (remote, another app, standby), sessions survive and
re-cast across network loss when asked to, and give the screen back when they end."""

from __future__ import annotations

import contextlib
from functools import partial

import psutil
import pytest
import trio

from helpers import running_service

from pagecast.core.screen import DMR_APP_ID
from pagecast.virtual_tv import open_virtual_tv

YOUTUBE = "233637DE"


def _session_children() -> list[psutil.Process]:
    """The service's Chromium and FFmpeg (the virtual TV's own player runs here too, and is not
    counted: it reads an http:// URL, the session's FFmpeg reads /dev/fd pipes)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(p.cmdline())
            if "chromium-headless-shell" in cmd or ("ffmpeg" in p.name() and "/dev/fd/" in cmd):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture
async def tv(nursery):
    async with open_virtual_tv(host="127.0.0.2", name="Living Room TV", player="ffmpeg") as tv:
        yield tv


@pytest.fixture
async def cast_service(nursery, tmp_path):
    """A service that knows the virtual TVs by static host, as a user behind Docker would set it."""
    async with running_service(
        nursery, tmp_path, cast_hosts=("127.0.0.2", "127.0.0.3"), cast_liveness_interval=0.5, cast_liveness_timeout=1.0,
        cast_connect_timeout=2.0, cast_give_up=4.0, cast_backoff_max=1.0, quality="720p",
    ) as svc:
        yield svc


@pytest.fixture
async def api(cast_service):
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cast_service.port}", timeout=60) as c:
        yield c


async def session(api, sid: str) -> dict:
    return (await api.get(f"/sessions/{sid}")).json()


async def wait_session(api, sid: str, predicate, timeout: float = 20.0) -> dict:
    with trio.fail_after(timeout):
        while True:
            data = await session(api, sid)
            if predicate(data):
                return data
            await trio.sleep(0.05)


async def cast(api, pages, device="Living Room TV", **extra) -> dict:
    response = await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": device, **extra})
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["cast"]["player_state"] == "PLAYING", data
    assert _session_children(), "a playing session's Chromium and FFmpeg are found (else ended_cleanly proves nothing)"
    return data


async def ended_cleanly(api, sid: str, within: float = 3.0) -> dict:
    """The session ends within 2 s (plus polling), and every process it started is gone 1 s later."""
    data = await wait_session(api, sid, lambda d: d["state"] in ("stopped", "failed"), timeout=within)
    with trio.fail_after(1.5):
        while _session_children():
            await trio.sleep(0.05)
    return data


async def test_two_tvs_play_at_once_in_the_ffmpeg_and_the_shaka_player_with_zero_stalls_and_independently(api, pages, tv):
    """Shaka is the engine of Cast receivers; FFmpeg the light player. Both TVs play the cast
    for PLAY_SECONDS without a stall, the TV ending one cast leaves the other playing, and a
    /stop gives the screen back."""
    async with open_virtual_tv(host="127.0.0.3", name="Shaka TV", player="shaka") as shaka_tv:
        a = await cast(api, pages, device="Living Room TV")
        b = await cast(api, pages, device="Shaka TV")
        assert a["id"] != b["id"] and a["cast"]["seconds_to_playing"] > 0
        for one in (tv, shaka_tv):
            assert one.media["contentType"] == "application/vnd.apple.mpegurl"
            assert one.media["hlsVideoSegmentFormat"] == "fmp4" and one.media["streamType"] == "LIVE"
        devices = {d["name"]: d for d in (await api.get("/devices")).json()["devices"]}
        assert devices["Shaka TV"]["session"] == b["id"] and devices["Living Room TV"]["session"] == a["id"]
        assert devices["Shaka TV"]["current_app"] == "Default Media Receiver"
        await plays_without_a_stall(api, {a["id"]: tv, b["id"]: shaka_tv})

        shaka_tv.remote_stop()
        await wait_session(api, b["id"], lambda d: d["state"] == "stopped", timeout=5)
        await trio.sleep(1)
        assert (await session(api, a["id"]))["cast"]["state"] == "playing" and tv.player_state == "PLAYING"

    assert (await api.post("/stop", json={"device": "Living Room TV"})).json()["stopped"] == [a["id"]]
    done = await wait_session(api, a["id"], lambda d: d["state"] == "stopped")
    assert done["cast"]["given_back"].startswith("back to the idle screen")
    assert tv.app_id != DMR_APP_ID


PLAY_SECONDS = 15


async def plays_without_a_stall(api, tvs: dict) -> None:
    before = {sid: one.state()["stats"] for sid, one in tvs.items()}
    await trio.sleep(PLAY_SECONDS)
    for sid, one in tvs.items():
        after = one.state()["stats"]
        assert one.player_state == "PLAYING"
        assert after["stalls"] == 0, (one.name, after)
        assert after["seconds_played"] - before[sid]["seconds_played"] >= PLAY_SECONDS - 2, (one.name, before[sid], after)
        now = await session(api, sid)
        assert now["cast"]["stalls"] == 0 and now["cast"]["state"] == "playing", now["cast"]


@pytest.mark.parametrize("fault, reason", [
    ("remote_stop", "stopped on the TV"),
    ("remote_quit", "our app was closed"),
    ("other_app", "another app took over the TV: YouTube"),
    ("standby", "the TV went to standby"),
])
async def test_the_tv_ending_the_cast_ends_the_session_and_leaves_nothing(api, pages, tv, fault, reason):
    started = await cast(api, pages, keep_on=True)
    if fault == "remote_stop":
        tv.remote_stop()
    elif fault == "remote_quit":
        tv.remote_quit()
    elif fault == "other_app":
        tv.launch_app(YOUTUBE, "YouTube")
    else:
        tv.standby(True)
    done = await ended_cleanly(api, started["id"])
    assert done["state"] == "stopped" and reason in done["stop_reason"], (done["stop_reason"], done["cast"])
    assert done["cast"]["stopped_by_device"] and done["cast"]["given_back"] is None


async def test_a_silent_network_drop_is_noticed_in_seconds_and_the_cast_continues_when_it_returns(api, pages, tv):
    started = await cast(api, pages)
    tv.drop_network("silent")
    t0 = trio.current_time()
    lost = await wait_session(api, started["id"], lambda d: d["cast"]["state"] == "reconnecting", timeout=10)
    noticed = trio.current_time() - t0
    assert lost["state"] == "live" and "status request" in lost["cast"]["lost"]
    tv.restore_network()
    back = await wait_session(api, started["id"], lambda d: d["cast"]["state"] == "playing" and d["cast"]["reconnects"] == 1, timeout=10)
    assert back["cast"]["casts"] == 1, "the TV kept playing: no re-cast needed"
    print(f"silent drop noticed after {noticed:.2f} s")


async def test_with_keep_on_a_restarted_tv_gets_the_dashboard_back(api, pages, tv):
    started = await cast(api, pages, keep_on=True)
    await tv.restart()
    back = await wait_session(api, started["id"], lambda d: d["cast"]["casts"] == 2 and d["cast"]["player_state"] == "PLAYING", timeout=20)
    assert back["state"] == "live" and back["cast"]["reconnects"] >= 1
    assert tv.player_state == "PLAYING"


async def test_without_keep_on_a_tv_that_lost_the_stream_ends_the_session(api, pages, tv):
    started = await cast(api, pages)
    await tv.restart()
    done = await ended_cleanly(api, started["id"], within=15)
    assert "dropped the stream while unreachable" in done["stop_reason"]


async def test_a_tv_that_stays_away_ends_a_session_without_keep_on(api, pages, tv):
    started = await cast(api, pages)
    tv.drop_network("reset")
    done = await ended_cleanly(api, started["id"], within=15)
    assert "unreachable for 4 s" in done["stop_reason"]


async def test_if_idle_does_not_interrupt_what_a_person_watches(api, pages, tv):
    tv.launch_app(YOUTUBE, "YouTube")
    response = await api.post("/start", json={"url": f"{pages}/dashboard.html", "device": "Living Room TV", "if_idle": True})
    assert response.status_code == 409 and "YouTube" in response.json()["error"] and "if_idle" in response.json()["error"]
    assert (await api.get("/status")).json()["sessions"] == []
    assert tv.app_id == YOUTUBE


async def test_a_session_with_a_duration_gives_back_the_app_and_the_volume(api, pages, tv):
    tv.launch_app(YOUTUBE, "YouTube")
    level = tv.volume_level
    started = await cast(api, pages, duration=6, volume=0.2)
    assert tv.volume_level == pytest.approx(0.2)
    done = await wait_session(api, started["id"], lambda d: d["state"] == "stopped", timeout=15)
    assert "duration" in done["stop_reason"]
    assert done["cast"]["given_back"].startswith("relaunched YouTube") and "volume back" in done["cast"]["given_back"]
    assert tv.app_id == YOUTUBE and tv.volume_level == pytest.approx(level)


async def test_a_tv_that_refuses_the_load_fails_the_session_with_its_reason(api, pages, tv):
    tv.refuse_load("MEDIA_SRC_NOT_SUPPORTED")
    response = await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": "Living Room TV"})
    data = response.json()
    assert data["state"] == "failed" and "could not load the stream" in data["error"] and "LOAD_FAILED" in data["error"], data
    with trio.fail_after(2):
        while _session_children():
            await trio.sleep(0.05)


async def test_a_new_session_takes_the_tv_over_and_gives_back_what_was_there_before_the_first(api, pages, tv):
    tv.launch_app(YOUTUBE, "YouTube")
    first = await cast(api, pages)
    second = await cast(api, pages, device="127.0.0.2")
    old = await session(api, first["id"])
    assert old["state"] == "stopped" and "replaced" in old["stop_reason"] and old["cast"]["given_back"] is None
    assert second["cast"]["previous"]["app"] == "YouTube"
    await api.post("/stop", json={"id": second["id"]})
    await wait_session(api, second["id"], lambda d: d["state"] == "stopped")
    assert tv.app_id == YOUTUBE


async def test_launching_on_a_tv_in_standby_wakes_it(api, pages, tv):
    tv.standby(True)
    started = await cast(api, pages)
    assert started["cast"]["woke_from_standby"] is True
    assert tv.state()["receiver"]["isStandBy"] is False


async def test_devices_lists_each_tv_with_what_it_shows(tv, api):
    tv.launch_app(YOUTUBE, "YouTube")
    data = (await api.get("/devices")).json()
    (found,) = [d for d in data["devices"] if d["host"] == "127.0.0.2"]
    assert found["name"] == "Living Room TV" and found["uuid"] == str(tv.uuid) and found["current_app"] == "YouTube"
    assert found["session"] is None and found["reachable"] is True
    assert "127.0.0.3" in data["unreachable"]


async def test_media_a_person_was_playing_is_reloaded_at_its_live_position_when_the_session_ends(api, pages, media, request, tv):
    import pychromecast
    from helpers import live_url

    theirs = live_url(media, request)  # cast by a person, with another sender
    cc = await trio.to_thread.run_sync(partial(pychromecast.get_chromecast_from_host, (tv.host, 8009, tv.uuid, None, None), tries=1))
    try:
        await trio.to_thread.run_sync(cc.wait, 10)
        await trio.to_thread.run_sync(partial(cc.media_controller.play_media, theirs, "application/vnd.apple.mpegurl", stream_type="LIVE", media_info={"hlsSegmentFormat": "fmp4", "hlsVideoSegmentFormat": "fmp4"}))
        await tv.wait_for(lambda st: st["player_state"] == "PLAYING", timeout=20)
    finally:
        await trio.to_thread.run_sync(cc.disconnect, 10)
    started = await cast(api, pages, duration=5)
    assert started["cast"]["previous"]["media"]["content_id"] == theirs
    done = await wait_session(api, started["id"], lambda d: d["state"] == "stopped", timeout=20)
    assert done["cast"]["given_back"].startswith("reloaded") and "live position" in done["cast"]["given_back"]
    await tv.wait_for(lambda st: (st["media"] or {}).get("contentId") == theirs and st["player_state"] == "PLAYING", timeout=20)


async def test_keep_on_never_recasts_over_an_app_a_person_opened_while_the_tv_was_unreachable(api, pages, tv):
    started = await cast(api, pages, keep_on=True)
    tv.drop_network("silent")
    await wait_session(api, started["id"], lambda d: d["cast"]["state"] == "reconnecting", timeout=10)
    tv.launch_app(YOUTUBE, "YouTube")
    tv.restore_network()
    done = await ended_cleanly(api, started["id"], within=15)
    assert "now shows YouTube; not interrupting it" in done["stop_reason"], done["stop_reason"]
    assert tv.app_id == YOUTUBE and done["cast"]["casts"] == 1


async def test_a_low_latency_fmp4_session_is_cast_as_progressive_mp4_and_plays(api, pages, tv):
    started = await cast(api, pages, mode="fmp4")
    assert tv.media["contentType"] == "video/mp4" and tv.media["contentId"].endswith("/live.mp4")
    await trio.sleep(5)
    assert tv.player_state == "PLAYING" and tv.state()["stats"]["stalls"] == 0


async def test_a_session_stopped_before_its_stream_was_live_still_gives_the_tv_back(api, pages, tv):
    response = await api.post("/start", json={"url": f"{pages}/hang", "device": "Living Room TV"})
    sid = response.json()["id"]
    await tv.wait_for(lambda st: st["app_id"] == DMR_APP_ID, timeout=10)
    await api.post("/stop", json={"id": sid})
    done = await ended_cleanly(api, sid, within=10)
    assert done["cast"]["casts"] == 0 and done["cast"]["given_back"].startswith("back to the idle screen")
    assert tv.app_id != DMR_APP_ID


async def test_a_start_stopped_while_it_connects_gets_a_409_not_a_500(api, pages, tv):
    tv.slow_network(0.5)  # every reply of the TV takes half a second: the /start is still connecting

    async def stop_soon():
        await trio.sleep(0.3)
        await api.post("/stop", json={})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_soon)
        response = await api.post("/start", json={"url": f"{pages}/dashboard.html", "device": "Living Room TV"})
    assert response.status_code == 409 and "stopped before it started" in response.json()["error"], response.text
    assert not _session_children()


async def test_stopping_casting_on_the_tv_while_the_page_loads_ends_the_session_without_casting(api, pages, tv):
    response = await api.post("/start", json={"url": f"{pages}/hang", "device": "Living Room TV", "keep_on": True})
    sid = response.json()["id"]
    await tv.wait_for(lambda st: st["app_id"] == DMR_APP_ID, timeout=10)
    tv.remote_quit()
    done = await ended_cleanly(api, sid, within=3)
    assert "left our app before the stream was live" in done["stop_reason"]
    await trio.sleep(0.5)
    assert tv.app_id != DMR_APP_ID and tv.media is None


async def test_two_starts_at_once_on_one_tv_leave_one_session_holding_it(api, pages, tv):
    first = await cast(api, pages)
    answers = []

    async def start():
        answers.append(await api.post("/start", json={"url": f"{pages}/dashboard.html", "device": "Living Room TV"}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start)
        nursery.start_soon(start)
    assert [r.status_code for r in answers] == [202, 202]
    active = [s for s in (await api.get("/status")).json()["sessions"] if s["state"] in ("starting", "live")]
    assert len(active) == 1 and active[0]["id"] != first["id"], active


async def test_a_replacing_session_stopped_before_its_load_still_gives_back_the_screen_from_before(api, pages, tv):
    tv.launch_app(YOUTUBE, "YouTube")
    await cast(api, pages, volume=0.3)
    second = (await api.post("/start", json={"url": f"{pages}/hang", "device": "Living Room TV"})).json()
    await api.post("/stop", json={"id": second["id"]})
    done = await ended_cleanly(api, second["id"], within=10)
    assert done["cast"]["given_back"].startswith("relaunched YouTube") and "volume back" in done["cast"]["given_back"], done["cast"]
    assert tv.app_id == YOUTUBE and tv.volume_level == pytest.approx(1.0)


def _tv_player() -> psutil.Process:
    """The virtual TV's FFmpeg player: it reads the stream over http://, the session's FFmpeg reads pipes."""
    [player] = [
        p for p in psutil.Process().children(recursive=True)
        if "ffmpeg" in p.name() and "http://" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    ]
    return player


async def test_a_tv_stuck_buffering_gets_the_stream_loaded_again(nursery, tmp_path, pages, tv):
    """The TV's player stops making progress while the stream flows on (stopped here with
    SIGSTOP): after cast_stuck_timeout the watcher loads the stream again, and it plays."""
    import httpx
    import os
    import signal

    async with running_service(nursery, tmp_path, cast_hosts=("127.0.0.2",), cast_stuck_timeout=2.0, quality="720p") as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=60) as api:
            started = await cast(api, pages)
            player = _tv_player()
            os.kill(player.pid, signal.SIGSTOP)
            try:
                await tv.wait_for(lambda st: st["player_state"] == "BUFFERING", timeout=10)
                st = await tv.wait_for(lambda st: st["loads"] == 2 and st["player_state"] == "PLAYING", timeout=20)
            finally:
                with contextlib.suppress(psutil.Error):
                    player.send_signal(signal.SIGCONT)
            # The TV plays before the watcher has read the LOAD's answer: wait for that too.
            status = await wait_session(api, started["id"], lambda d: d["cast"]["reloads"] == 1 and d["cast"]["state"] == "playing", timeout=10)
            assert status["state"] == "live" and status["cast"]["stalls"] >= 1 and status["cast"]["casts"] == 2, status["cast"]
            assert st["media"]["contentId"] == started["stream_url"]
            await api.post("/stop", json={"id": started["id"]})
            await ended_cleanly(api, started["id"], within=10)
