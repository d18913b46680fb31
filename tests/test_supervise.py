"""Sessions are actors: a dying encoder is restarted inside its session without changing the
stream, and a crash takes down only its own session."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from helpers import client_of, no_media_processes, running_service, session, wait_for, wait_state
from pagecast.lowlevel.proc import alive, descendants, is_browser, is_ffmpeg, is_renderer


def _segments(playlist: str) -> list[int]:
    """The numbers of a playlist's segments (``seg-<n>.m4s``), in its order."""
    return [int(line[4:-4]) for line in playlist.splitlines() if line.startswith("seg-")]


async def _start(client, pages) -> str:
    return (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]


def _status_and_playlist(client, sid: str):
    async def ask() -> tuple[dict, str]:
        return await session(client, sid), (await client.get(f"/streams/{sid}/index.m3u8")).text

    return ask


async def test_encoder_restart_keeps_the_stream_and_continues_the_playlist(client, pages):
    sid = await _start(client, pages)
    _, before = await wait_for(_status_and_playlist(client, sid), lambda a: max(_segments(a[1]), default=0) >= 1)
    [ffmpeg] = descendants(kind=is_ffmpeg)
    os.kill(ffmpeg.pid, signal.SIGKILL)
    status, playlist = await wait_for(
        _status_and_playlist(client, sid),
        lambda a: '#EXT-X-MAP:URI="init-1.mp4"' in a[1] and len(_segments(a[1])) >= len(_segments(before)) + 2,
        timeout=15,
    )
    assert status["state"] == "live" and status["encoder_restarts"] == 1
    assert [(e["child"], e["kind"]) for e in status["restart_log"]] == [("encoder", "crash")]
    old_part, new_part = playlist.split("#EXT-X-DISCONTINUITY")
    old_run, new_run = _segments(old_part), _segments(new_part)
    last_before = _segments(before)[-1]
    # The new encoder's segments follow the old one's numbers: not restarted at 0, none reused.
    assert old_run[-1] >= last_before >= 1 and new_run[0] == old_run[-1] + 1, (old_run, new_run)
    segments = _segments(playlist)
    assert segments == list(range(segments[0], segments[-1] + 1)) and segments[-1] > last_before
    assert (await client.get(f"/streams/{sid}/init-1.mp4")).status_code == 200
    await client.post("/stop", json={"id": sid})


@pytest.mark.settings(encoder_restarts=1)
async def test_an_encoder_failing_past_its_budget_fails_the_session_naming_it_and_leaves_nothing(client, pages):
    """Past its intensity (here one restart a minute) a child is not restarted again: the
    session fails with a reason that names the child, the count and the last failure."""
    sid = await _start(client, pages)
    killed: set[int] = set()

    async def kill_each_encoder() -> dict:
        for ffmpeg in descendants(kind=is_ffmpeg):
            if ffmpeg.pid not in killed:
                killed.add(ffmpeg.pid)
                ffmpeg.kill()
        return await session(client, sid)

    status = await wait_for(kill_each_encoder, lambda d: d["state"] != "live", every=0.1)
    assert len(killed) == 2 and status["state"] == "failed", (killed, status["state"])
    assert status["error"].startswith("the encoder failed 2 times in 60 s; last: "), status["error"]
    assert status["restarts"]["encoder"] == 1
    await no_media_processes(timeout=10)


@pytest.mark.settings(encoder_hang_timeout=2.0)
async def test_a_hung_encoder_is_killed_and_replaced_and_the_stream_continues(client, pages):
    """FFmpeg stopped (SIGSTOP) takes frames and writes nothing: after encoder_hang_timeout it
    is killed and restarted like a dead one, and the playlist goes on with a discontinuity."""
    sid = await _start(client, pages)
    [hung] = descendants(kind=is_ffmpeg)
    hung.suspend()
    stopped_at = trio.current_time()
    status, _ = await wait_for(
        _status_and_playlist(client, sid),
        lambda a: a[0]["encoder_restarts"] == 1 and '#EXT-X-MAP:URI="init-1.mp4"' in a[1].split("#EXT-X-DISCONTINUITY")[-1]
        and len(_segments(a[1])) >= 3,
        timeout=15, every=0.2,
    )
    replaced_after = trio.current_time() - stopped_at
    assert status["state"] == "live"
    assert [(e["child"], e["kind"]) for e in status["restart_log"]] == [("encoder", "hang")]
    assert status["children"]["encoder"]["pid"] not in (None, hung.pid)
    assert not alive([hung])  # killed, awaiting its reaper at most
    assert [p.pid for p in descendants(kind=is_ffmpeg)] != [hung.pid]
    assert 2.0 <= replaced_after < 10, replaced_after
    await client.post("/stop", json={"id": sid})


def _browsers() -> set[int]:
    return {p.pid for p in descendants(kind=is_browser)}


@pytest.mark.settings(renderer_hang_timeout=2.0)
async def test_chromium_crashing_or_hanging_is_replaced_inside_its_session_with_no_gap_in_the_stream(client, pages):
    """The page's renderer killed, the browser killed, the browser stopped (a hang): each time a
    new Chromium reloads the page in the same session, the encoder keeps going (no discontinuity,
    a segment every second throughout), and the other session never notices. (A new Chromium
    that gives no picture, seen now and then on a busy machine, is itself replaced: a restart
    of kind no_picture, which this test allows between its faults.)"""

    def faults(status: dict) -> list[tuple[str, str]]:
        return [(e["child"], e["kind"]) for e in status["restart_log"] if e["kind"] != "no_picture"]

    first = await _start(client, pages)
    (browser,) = _browsers()
    other = await _start(client, pages)
    other_browsers = _browsers() - {browser}
    t0, segments0 = trio.current_time(), (await session(client, first))["segments"]
    for n, fault in enumerate(("the page's renderer killed", "the browser killed", "the browser stopped"), start=1):
        if fault == "the page's renderer killed":
            for p in descendants(browser, kind=is_renderer):
                p.kill()
        else:
            os.kill(browser, signal.SIGKILL if fault == "the browser killed" else signal.SIGSTOP)

        def restarted(status: dict) -> bool:
            assert status["state"] == "live", (fault, status["error"])
            return len(faults(status)) >= n

        status = await wait_for(lambda: session(client, first), restarted, every=0.1)
        assert status["last_restart"]["child"] == "renderer", status["last_restart"]
        # A new Chromium draws the page (the dashboard changes every second) before the next fault.
        drawing = await wait_for(
            lambda: session(client, first),
            lambda d: d["children"]["renderer"]["pid"] not in (None, browser) and d["frames"]["captured"] > status["frames"]["captured"],
            every=0.1,
        )
        browser = drawing["children"]["renderer"]["pid"]
        assert browser in _browsers() - other_browsers
    status = await session(client, first)
    playlist = (await client.get(f"/streams/{first}/index.m3u8")).text
    elapsed = trio.current_time() - t0
    restarts = len(status["restart_log"])
    assert status["state"] == "live" and status["restarts"] == {"renderer": restarts, "encoder": 0}
    assert faults(status) == [("renderer", "crash")] * 2 + [("renderer", "hang")]
    renderer = status["children"]["renderer"]
    assert renderer["state"] == "running" and renderer["pid"] == browser and renderer["restarts"] == restarts and renderer["recycles"] == 0
    assert "#EXT-X-DISCONTINUITY" not in playlist  # one encoder run throughout: no gap
    assert status["segments"] - segments0 >= elapsed - 2, (status["segments"], segments0, elapsed)
    assert (await session(client, other))["restarts"]["renderer"] == 0
    await client.post("/stop", json={})


async def test_sessions_beyond_the_limit_get_429_and_start_nothing(client, pages, service):
    limit = service.settings.max_sessions
    ids = []
    for _ in range(limit):
        r = await client.post("/start", json={"url": f"{pages}/dashboard.html", "quality": "720p", "fps": 5})
        assert r.status_code == 202
        ids.append(r.json()["id"])
    r = await client.post("/start", json={"url": f"{pages}/dashboard.html"})
    assert r.status_code == 429 and "PAGECAST_MAX_SESSIONS" in r.json()["error"]
    assert len((await client.get("/status")).json()["sessions"]) == limit
    await client.post("/stop", json={})
    for sid in ids:
        await wait_state(client, sid, "stopped", "failed")


async def test_profile_from_the_profiles_file_starts_a_session(nursery, pages, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'[profiles.door]\nurl = "{pages}/dashboard.html"\nquality = "720p"\nmode = "fmp4"\nduration = 30\n')
    async with running_service(nursery, tmp_path, profiles_file=str(profiles)) as svc, client_of(svc) as client:
        r = await client.post("/start?wait=1", json={"profile": "door"})
        assert r.status_code == 202, r.text
        data = r.json()
        assert data["state"] == "live" and data["mode"] == "fmp4" and data["quality"] == "720p" and data["profile"] == "door"
        assert data["stream_url"].endswith("/live.mp4")
        await client.post("/stop", json={})
