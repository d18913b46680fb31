"""Casting across trouble on the TV's side: its network dropping silently or for good, the
TV restarting, a person opening an app meanwhile, its player stuck buffering. Its own file
(and TV address, 127.0.0.4), so that it runs beside tests/test_cast.py."""

from __future__ import annotations

import contextlib

import psutil
import pytest
import trio

from cast_helpers import YOUTUBE, cast, ended_cleanly, tv_player, wait_session
from helpers import lo, running_service

from pagecast.virtual_tv import open_virtual_tv

HOST = lo("127.0.0.4")


@pytest.fixture
async def tv(nursery):
    async with open_virtual_tv(host=HOST, name="Living Room TV", player="ffmpeg") as tv:
        yield tv


@pytest.fixture
async def api(nursery, tmp_path):
    import httpx

    async with running_service(
        nursery, tmp_path, cast_hosts=(HOST,), cast_liveness_interval=0.5, cast_liveness_timeout=1.0,
        cast_connect_timeout=2.0, cast_give_up=4.0, cast_backoff_max=1.0, quality="720p",
    ) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=60) as c:
            yield c


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


async def test_keep_on_never_recasts_over_an_app_a_person_opened_while_the_tv_was_unreachable(api, pages, tv):
    started = await cast(api, pages, keep_on=True)
    tv.drop_network("silent")
    await wait_session(api, started["id"], lambda d: d["cast"]["state"] == "reconnecting", timeout=10)
    tv.launch_app(YOUTUBE, "YouTube")
    tv.restore_network()
    done = await ended_cleanly(api, started["id"], within=15)
    assert "now shows YouTube; not interrupting it" in done["stop_reason"], done["stop_reason"]
    assert tv.app_id == YOUTUBE and done["cast"]["casts"] == 1


async def test_a_tv_stuck_buffering_gets_the_stream_loaded_again(nursery, tmp_path, pages, tv):
    """The TV's player stops making progress while the stream flows on (stopped here with
    SIGSTOP): after cast_stuck_timeout the watcher loads the stream again, and it plays."""
    import httpx
    import os
    import signal

    async with running_service(nursery, tmp_path, cast_hosts=(HOST,), cast_stuck_timeout=2.0, quality="720p") as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=60) as api:
            started = await cast(api, pages)
            player = tv_player()
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
