"""What the casting tests share: finding a session's processes, waiting on its /status,
casting the test dashboard to a virtual TV and checking that a session ended cleanly."""

from __future__ import annotations

import contextlib

import psutil

from helpers import client_of, running_service, session, wait_for
from pagecast.lowlevel.proc import command, descendants, is_ffmpeg

__all__ = ["YOUTUBE", "cast", "casting_api", "ended_cleanly", "session", "session_children", "tv_player", "wait_session"]

YOUTUBE = "233637DE"


def _says(p: psutil.Process, what: str) -> bool:
    return any(what in a for a in command(p))


def session_children() -> list[psutil.Process]:
    """The service's Chromium and FFmpeg (the virtual TV's own players run here too, and are not
    counted: its FFmpeg reads an http:// URL, the session's FFmpeg reads /dev/fd pipes; its
    Chromium is a full one, the session's is the headless shell)."""
    return descendants(kind=lambda p: _says(p, "chromium-headless-shell") or (is_ffmpeg(p) and _says(p, "/dev/fd/")))


async def wait_session(api, sid: str, predicate, timeout: float = 20.0) -> dict:
    return await wait_for(lambda: session(api, sid), predicate, timeout=timeout)


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
    await wait_for(session_children, lambda procs: not procs, timeout=1.5)
    return data


def tv_player() -> psutil.Process:
    """The virtual TV's FFmpeg player: it reads the stream over http://, the session's FFmpeg reads pipes."""
    [player] = descendants(kind=lambda p: is_ffmpeg(p) and _says(p, "http://"))
    return player


@contextlib.asynccontextmanager
async def casting_api(nursery, tmp_path, hosts: tuple[str, ...]):
    """A client of a service that knows the virtual TVs at ``hosts`` by static host, as a user
    behind Docker would set it; quick to notice a lost TV and to give it up."""
    async with running_service(
        nursery, tmp_path, cast_hosts=hosts, cast_liveness_interval=0.5, cast_liveness_timeout=1.0,
        cast_connect_timeout=2.0, cast_give_up=4.0, cast_backoff_max=1.0, quality="720p",
    ) as svc:
        async with client_of(svc, timeout=60) as client:
            yield client
