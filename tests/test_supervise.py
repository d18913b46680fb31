"""Sessions are actors: a dying encoder is restarted inside its session without changing the
stream, and a crash takes down only its own session."""

from __future__ import annotations

import os
import signal

import psutil
import trio

from test_api import wait_state


def _children(name: str, exclude: set[int] = frozenset()) -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if name in p.name() and p.pid not in exclude and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


async def test_encoder_restart_keeps_the_stream_and_continues_the_playlist(client, pages):
    started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    sid = started["id"]
    await trio.sleep(2.5)
    before = (await client.get(f"/streams/{sid}/index.m3u8")).text
    [ffmpeg] = _children("ffmpeg")
    os.kill(ffmpeg.pid, signal.SIGKILL)
    with trio.fail_after(15):
        while True:
            status = (await client.get(f"/sessions/{sid}")).json()
            playlist = (await client.get(f"/streams/{sid}/index.m3u8")).text
            if '#EXT-X-MAP:URI="init-1.mp4"' in playlist and playlist.count("seg-") >= before.count("seg-") + 2:
                break
            await trio.sleep(0.2)
    assert status["state"] == "live" and status["encoder_restarts"] == 1
    assert [(e["child"], e["kind"]) for e in status["restart_log"]] == [("encoder", "crash")]
    lines = playlist.splitlines()
    cut = lines.index("#EXT-X-DISCONTINUITY")
    old_run = [int(line[4:-4]) for line in lines[:cut] if line.startswith("seg-")]
    new_run = [int(line[4:-4]) for line in lines[cut:] if line.startswith("seg-")]
    last_before = int(before.strip().splitlines()[-1][4:-4])
    # The new encoder's segments follow the old one's numbers: not restarted at 0, none reused.
    assert old_run[-1] >= last_before >= 1 and new_run[0] == old_run[-1] + 1, (old_run, new_run)
    new_segments = [int(line[4:-4]) for line in playlist.splitlines() if line.startswith("seg-")]
    assert new_segments == list(range(new_segments[0], new_segments[-1] + 1)) and new_segments[-1] > last_before
    assert (await client.get(f"/streams/{sid}/init-1.mp4")).status_code == 200
    await client.post("/stop", json={"id": sid})


async def test_an_encoder_failing_past_its_budget_fails_the_session_naming_it_and_leaves_nothing(nursery, tmp_path, pages):
    """Past its intensity (here one restart a minute) a child is not restarted again: the
    session fails with a reason that names the child, the count and the last failure."""
    import httpx

    from helpers import running_service

    async with running_service(nursery, tmp_path, encoder_restarts=1) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as client:
            sid = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]
            killed: set[int] = set()
            with trio.fail_after(20):
                while (status := (await client.get(f"/sessions/{sid}")).json())["state"] == "live":
                    for ffmpeg in _children("ffmpeg", exclude=killed):
                        killed.add(ffmpeg.pid)
                        os.kill(ffmpeg.pid, signal.SIGKILL)
                    await trio.sleep(0.1)
            assert len(killed) == 2 and status["state"] == "failed", (killed, status["state"])
            assert status["error"].startswith("the encoder failed 2 times in 60 s; last: "), status["error"]
            assert status["restarts"]["encoder"] == 1
            with trio.fail_after(10):
                while _children("ffmpeg") or _children("chrom"):
                    await trio.sleep(0.05)


async def test_a_hung_encoder_is_killed_and_replaced_and_the_stream_continues(nursery, tmp_path, pages):
    """FFmpeg stopped (SIGSTOP) takes frames and writes nothing: after encoder_hang_timeout it
    is killed and restarted like a dead one, and the playlist goes on with a discontinuity."""
    import httpx

    from helpers import running_service

    async with running_service(nursery, tmp_path, encoder_hang_timeout=2.0) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as client:
            sid = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]
            [hung] = _children("ffmpeg")
            os.kill(hung.pid, signal.SIGSTOP)
            stopped_at = trio.current_time()
            with trio.fail_after(15):
                while True:
                    status = (await client.get(f"/sessions/{sid}")).json()
                    playlist = (await client.get(f"/streams/{sid}/index.m3u8")).text
                    if status["encoder_restarts"] == 1 and '#EXT-X-MAP:URI="init-1.mp4"' in playlist.split("#EXT-X-DISCONTINUITY")[-1] \
                            and playlist.count("seg-") >= 3:
                        break
                    await trio.sleep(0.2)
            replaced_after = trio.current_time() - stopped_at
            assert status["state"] == "live"
            assert [(e["child"], e["kind"]) for e in status["restart_log"]] == [("encoder", "hang")]
            assert status["children"]["encoder"]["pid"] not in (None, hung.pid)
            try:
                assert hung.status() == psutil.STATUS_ZOMBIE  # killed, awaiting its reaper at most
            except psutil.NoSuchProcess:
                pass
            assert [p.pid for p in _children("ffmpeg")] != [hung.pid]
            assert 2.0 <= replaced_after < 10, replaced_after
            await client.post("/stop", json={"id": sid})


def _browsers() -> set[int]:
    """The sessions' browsers: our direct children (a browser's own processes are its children,
    and one just forked still shows the browser's command line)."""
    out = set()
    for p in psutil.Process().children():
        try:
            if "chromium" in p.name() and p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


def _renderers_of(browser: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(browser).children(recursive=True) if "--type=renderer" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


async def test_chromium_crashing_or_hanging_is_replaced_inside_its_session_with_no_gap_in_the_stream(nursery, tmp_path, pages):
    """The page's renderer killed, the browser killed, the browser stopped (a hang): each time a
    new Chromium reloads the page in the same session, the encoder keeps going (no discontinuity,
    a segment every second throughout), and the other session never notices."""
    import httpx

    from helpers import running_service

    async with running_service(nursery, tmp_path, renderer_hang_timeout=2.0) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as client:
            first = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]
            (browser,) = _browsers()
            other = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]
            other_browsers = _browsers() - {browser}
            t0, segments0 = trio.current_time(), (await client.get(f"/sessions/{first}")).json()["segments"]
            for n, fault in enumerate(("the page's renderer killed", "the browser killed", "the browser stopped"), start=1):
                if fault == "the page's renderer killed":
                    for p in _renderers_of(browser):
                        p.kill()
                else:
                    os.kill(browser, signal.SIGKILL if fault == "the browser killed" else signal.SIGSTOP)
                with trio.fail_after(20):
                    while (status := (await client.get(f"/sessions/{first}")).json())["restarts"]["renderer"] < n:
                        assert status["state"] == "live", (fault, status["error"])
                        await trio.sleep(0.1)
                    while not (fresh := _browsers() - other_browsers - {browser}):
                        await trio.sleep(0.1)
                (browser,) = fresh
                assert status["last_restart"]["child"] == "renderer", status["last_restart"]
                await trio.sleep(1.5)  # the new page is drawing
            status = (await client.get(f"/sessions/{first}")).json()
            playlist = (await client.get(f"/streams/{first}/index.m3u8")).text
            elapsed = trio.current_time() - t0
            assert status["state"] == "live" and status["restarts"] == {"renderer": 3, "encoder": 0}
            assert [(e["child"], e["kind"]) for e in status["restart_log"]] == [("renderer", "crash")] * 2 + [("renderer", "hang")]
            renderer = status["children"]["renderer"]
            assert renderer["state"] == "running" and renderer["pid"] == browser and renderer["restarts"] == 3 and renderer["recycles"] == 0
            assert "#EXT-X-DISCONTINUITY" not in playlist  # one encoder run throughout: no gap
            assert status["segments"] - segments0 >= elapsed - 2, (status["segments"], segments0, elapsed)
            assert (await client.get(f"/sessions/{other}")).json()["restarts"]["renderer"] == 0
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


async def test_profile_from_the_profiles_file_starts_a_session(client, pages, service, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'[profiles.door]\nurl = "{pages}/dashboard.html"\nquality = "720p"\nmode = "fmp4"\nduration = 30\n')
    object.__setattr__(service.settings, "profiles_file", str(profiles))
    r = await client.post("/start?wait=1", json={"profile": "door"})
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["state"] == "live" and data["mode"] == "fmp4" and data["quality"] == "720p" and data["profile"] == "door"
    assert data["stream_url"].endswith("/live.mp4")
    await client.post("/stop", json={})
