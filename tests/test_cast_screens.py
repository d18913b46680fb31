"""One render on several TVs, end to end: each a screen of its own that plays the one stream,
leaves alone, and is given back alone (its own virtual TVs' addresses, so it runs beside
tests/test_cast.py)."""

from __future__ import annotations

import pytest
import trio

from cast_helpers import cast, ended_cleanly, session, session_children, wait_session
from helpers import lo

from pagecast.core.screen import DMR_APP_ID
from pagecast.virtual_tv import open_virtual_tv


#: The Living Room TV (``tv``, FFmpeg player) and every TV the service knows (``api``): conftest.py.
TV_HOST = lo("127.0.0.6")
CAST_HOSTS = (lo("127.0.0.6"), lo("127.0.0.7"), lo("127.0.0.8"))


@pytest.mark.slow
async def test_three_tvs_show_one_render_with_zero_stalls_and_one_stopped_on_its_remote_leaves_the_others_playing(api, pages, tv):
    """Shaka is the engine of Cast receivers; FFmpeg the light player. A second and a third
    /start of the same page join the first session's render; every TV plays it for
    PLAY_SECONDS without a stall; the remote of one ends only its screen; a /stop by device
    takes one TV off; the last one leaving ends the session, which gives its TV back."""
    async with open_virtual_tv(host=lo("127.0.0.7"), name="Shaka TV", player="shaka") as shaka_tv, \
            open_virtual_tv(host=lo("127.0.0.8"), name="Kitchen TV", player="ffmpeg") as kitchen_tv:
        a = await cast(api, pages, device="Living Room TV")
        b = await cast(api, pages, device="Shaka TV")
        c = await cast(api, pages, device="Kitchen TV")
        assert a["joined"] is False and b["joined"] is True and c["joined"] is True
        assert a["id"] == b["id"] == c["id"] and len(_roots()) == 2, "one Chromium and one FFmpeg for three TVs"
        for one in (tv, shaka_tv, kitchen_tv):
            assert one.media["contentType"] == "application/vnd.apple.mpegurl"
            assert one.media["hlsVideoSegmentFormat"] == "fmp4" and one.media["streamType"] == "LIVE"
        devices = {d["name"]: d for d in (await api.get("/devices")).json()["devices"]}
        assert {devices[n]["session"] for n in ("Living Room TV", "Shaka TV", "Kitchen TV")} == {a["id"]}
        assert devices["Shaka TV"]["current_app"] == "Default Media Receiver"
        await plays_without_a_stall(api, a["id"], [tv, shaka_tv, kitchen_tv])

        kitchen_tv.remote_stop()
        left = await wait_session(api, a["id"], lambda d: _screen(d, "Kitchen TV")["ended"] is not None, timeout=5)
        assert "stopped on the TV" in _screen(left, "Kitchen TV")["ended"] and left["state"] == "live"
        await plays_without_a_stall(api, a["id"], [tv, shaka_tv], seconds=3)

        assert (await api.post("/stop", json={"device": "Shaka TV"})).json()["stopped"] == [a["id"]]
        await wait_session(api, a["id"], lambda d: _screen(d, "Shaka TV")["ended"] == "stopped by API", timeout=5)
        await shaka_tv.wait_for(lambda st: st["app_id"] != DMR_APP_ID, timeout=5)  # given back
        assert (await session(api, a["id"]))["state"] == "live" and tv.player_state == "PLAYING"

    assert (await api.post("/stop", json={"device": "Living Room TV"})).json()["stopped"] == [a["id"]]
    done = await ended_cleanly(api, a["id"])
    assert done["state"] == "stopped" and done["stop_reason"] == "stopped by API"
    assert done["cast"]["given_back"].startswith("back to the idle screen")
    assert tv.app_id != DMR_APP_ID


async def test_share_false_gives_a_start_a_render_of_its_own(api, pages, tv):
    async with open_virtual_tv(host=lo("127.0.0.7"), name="Shaka TV", player="ffmpeg"):
        a = await cast(api, pages, device="Living Room TV")
        b = await cast(api, pages, device="Shaka TV", share=False)
        assert a["id"] != b["id"] and b["joined"] is False and len(_roots()) == 4
        await api.post("/stop", json={})
        await ended_cleanly(api, a["id"])
        await ended_cleanly(api, b["id"])


def _roots() -> list:
    """The session's Chromium browsers and FFmpegs, not Chromium's helper processes."""
    return [p for p in session_children() if "--type=" not in " ".join(p.cmdline())]


def _screen(status: dict, name: str) -> dict:
    [screen] = [s for s in status["screens"] if s["device"] == name]
    return screen


PLAY_SECONDS = 15


async def plays_without_a_stall(api, sid: str, tvs: list, seconds: float = PLAY_SECONDS) -> None:
    before = {one.name: one.state()["stats"] for one in tvs}
    await trio.sleep(seconds)
    now = await session(api, sid)
    for one in tvs:
        after = one.state()["stats"]
        assert one.player_state == "PLAYING", (one.name, one.state()["stats"])
        assert after["stalls"] == 0, (one.name, after)
        assert after["seconds_played"] - before[one.name]["seconds_played"] >= seconds - 2, (one.name, before[one.name], after)
        screen = _screen(now, one.name)
        assert screen["stalls"] == 0 and screen["state"] == "playing", screen


async def test_a_tv_that_refuses_the_load_is_that_screens_error_and_the_other_tv_plays_on(api, pages, tv):
    async with open_virtual_tv(host=lo("127.0.0.7"), name="Shaka TV", player="ffmpeg") as other:
        tv.refuse_load("MEDIA_SRC_NOT_SUPPORTED")
        response = await api.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "device": ["Living Room TV", "Shaka TV"]})
        data = response.json()
        assert data["state"] == "live" and other.player_state == "PLAYING", data
        refused = _screen(data, "Living Room TV")
        assert refused["ended"] == "failed" and "LOAD_FAILED" in refused["error"], refused
        assert _screen(data, "Shaka TV")["ended"] is None
        await api.post("/stop", json={"id": data["id"]})
        await ended_cleanly(api, data["id"])


async def test_a_start_of_the_page_a_tv_already_shows_joins_it_and_changes_nothing(api, pages, tv):
    first = await cast(api, pages)
    again = await cast(api, pages)
    assert again["id"] == first["id"] and again["joined"] is True and len(again["screens"]) == 1
    assert tv.state()["loads"] == 1
