"""End to end: a real page through real Chromium and FFmpeg, played by real players
(hls.js and Shaka Player from the pinned npm packages, Chromium's native player)."""

from __future__ import annotations

import pytest
import trio

from pagecast.lowlevel.browser import open_player_browser

PLAY_SECONDS = 22


async def _play(client, service, pages, mode: str, players: list[str]) -> dict[str, dict]:
    r = await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p", "mode": mode})
    assert r.status_code == 202 and r.json()["state"] == "live", r.text
    session = r.json()
    async with open_player_browser() as browser:
        tabs = {name: await browser.open(f"{service.url}/watch/{session['id']}?player={name}") for name in players}
        with trio.fail_after(30):
            while True:
                stats = {name: await tab.stats() for name, tab in tabs.items()}
                if all(s and s.get("firstFrameAt") for s in stats.values()):
                    break
                for name, s in stats.items():
                    assert not (s or {}).get("errors"), f"{name}: {s['errors']}"
                await trio.sleep(0.5)
        start_times = {name: s["currentTime"] for name, s in stats.items()}
        await trio.sleep(PLAY_SECONDS)
        stats = {name: await tab.stats() for name, tab in tabs.items()}
    status = (await client.get(f"/sessions/{session['id']}")).json()
    assert status["state"] == "live" and status["segments"] >= PLAY_SECONDS
    await client.post("/stop", json={"id": session["id"]})
    for name, s in stats.items():
        s["played"] = s["currentTime"] - start_times[name]
    return stats


def _assert_smooth(stats: dict[str, dict]) -> None:
    for name, s in stats.items():
        assert s["errors"] == [], f"{name} reported errors: {s['errors']}"
        assert s["stalls"] == 0, f"{name} stalled {s['stalls']} times ({s['stallSeconds']:.1f} s): {s['stallLog']}"
        assert s["frozenChecks"] == 0, f"{name}: playback position stopped advancing {s['frozenChecks']} times"
        assert s["played"] >= PLAY_SECONDS - 2, f"{name} played only {s['played']:.1f} s of {PLAY_SECONDS} s"


@pytest.mark.e2e
async def test_hls_plays_20_seconds_in_hlsjs_and_shaka_without_stalls(client, service, pages):
    _assert_smooth(await _play(client, service, pages, "hls", ["hlsjs", "shaka"]))


@pytest.mark.e2e
async def test_fmp4_plays_20_seconds_in_chromium_native_player_without_stalls(client, service, pages):
    _assert_smooth(await _play(client, service, pages, "fmp4", ["native"]))
