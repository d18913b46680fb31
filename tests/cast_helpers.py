"""What the casting tests share: finding a session's processes, waiting on its /status,
casting the test dashboard to a virtual TV and checking that a session ended cleanly."""

from __future__ import annotations

import psutil
import trio

YOUTUBE = "233637DE"


def session_children() -> list[psutil.Process]:
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
    assert session_children(), "a playing session's Chromium and FFmpeg are found (else ended_cleanly proves nothing)"
    return data


async def ended_cleanly(api, sid: str, within: float = 3.0) -> dict:
    """The session ends within 2 s (plus polling), and every process it started is gone 1 s later."""
    data = await wait_session(api, sid, lambda d: d["state"] in ("stopped", "failed"), timeout=within)
    with trio.fail_after(1.5):
        while session_children():
            await trio.sleep(0.05)
    return data


def tv_player() -> psutil.Process:
    """The virtual TV's FFmpeg player: it reads the stream over http://, the session's FFmpeg reads pipes."""
    [player] = [
        p for p in psutil.Process().children(recursive=True)
        if "ffmpeg" in p.name() and "http://" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    ]
    return player
