"""End to end: a real page through real Chromium and FFmpeg, played by real players
(hls.js and Shaka Player from the pinned npm packages, Chromium's native player)."""

from __future__ import annotations

import pytest
import trio

from pagecast.lowlevel.browser import open_player_browser

PLAY_SECONDS = 15


async def _start(client, pages, mode: str) -> dict:
    r = await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p", "mode": mode})
    assert r.status_code == 202 and r.json()["state"] == "live", r.text
    return r.json()


async def _segments(client, session: dict) -> int:
    status = (await client.get(f"/sessions/{session['id']}")).json()
    assert status["state"] == "live", status
    return status["segments"]


def _assert_smooth(stats: dict[str, dict]) -> None:
    for name, s in stats.items():
        assert s["errors"] == [], f"{name} reported errors: {s['errors']}"
        assert s["stalls"] == 0, f"{name} stalled {s['stalls']} times ({s['stallSeconds']:.1f} s): {s['stallLog']}"
        assert s["frozenChecks"] == 0, f"{name}: playback position stopped advancing {s['frozenChecks']} times"
        assert s["played"] >= PLAY_SECONDS - 2, f"{name} played only {s['played']:.1f} s of {PLAY_SECONDS} s"


async def _first_frames(tabs: dict) -> dict[str, dict]:
    """Every tab's stats once each has shown its first frame (an error fails at once)."""
    with trio.fail_after(30):
        while True:
            stats = {name: await tab.stats() for name, tab in tabs.items()}
            if all(s and s.get("firstFrameAt") for s in stats.values()):
                return stats
            for name, s in stats.items():
                assert not (s or {}).get("errors"), f"{name}: {s['errors']}"
            await trio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.e2e
async def test_hls_in_hlsjs_and_shaka_and_fmp4_in_the_native_player_play_without_stalls(client, service, pages):
    """Both stream modes at once, each in its players, for PLAY_SECONDS: no stall, no error,
    no frozen picture, and the streams keep real time (a segment a segment-duration)."""
    hls, fmp4 = await _start(client, pages, "hls"), await _start(client, pages, "fmp4")
    async with open_player_browser() as browser:
        # The HLS players start first: the native player sits within half a second of the live
        # edge by design, so it joins once the others' start-up (scripts, first decodes) is over.
        tabs = {}
        for wave in ({"hlsjs": hls, "shaka": hls}, {"native": fmp4}):
            for name, session in wave.items():
                tabs[name] = await browser.open(f"{service.url}/watch/{session['id']}?player={name}")
            stats = await _first_frames(tabs)
            await trio.sleep(1.5)
        stats = await _first_frames(tabs)
        start_times = {name: s["currentTime"] for name, s in stats.items()}
        t0, segments0 = trio.current_time(), {m: await _segments(client, s) for m, s in (("hls", hls), ("fmp4", fmp4))}
        await trio.sleep(PLAY_SECONDS)
        stats = {name: await tab.stats() for name, tab in tabs.items()}
        elapsed, segments1 = trio.current_time() - t0, {m: await _segments(client, s) for m, s in (("hls", hls), ("fmp4", fmp4))}
    await client.post("/stop", json={})
    # A stream that fell behind real time would starve any player, however far back it sits.
    assert segments1["hls"] - segments0["hls"] >= elapsed - 2, (segments0, segments1, elapsed)
    assert segments1["fmp4"] - segments0["fmp4"] >= 2 * (elapsed - 2), (segments0, segments1, elapsed)
    for name, s in stats.items():
        s["played"] = s["currentTime"] - start_times[name]
    _assert_smooth(stats)
