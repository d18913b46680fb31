"""What every scenario runs against: virtual TVs on their own loopback addresses, the page
they show, a real ``pagecast serve`` as a child process, and what can be seen of its
processes from the outside (psutil). The harness is an outside peer of the service: it
talks to it over HTTP and to its processes by signal, as an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import psutil
import trio

from ..bench.drive import Pagecast, open_pagecast, serve_pages
from ..lowlevel.proc import alive, descendants, is_browser, is_ffmpeg

#: The virtual TVs' addresses: away from those the test suite uses, so both can run at once.
TV_HOSTS = ("127.0.0.31", "127.0.0.32", "127.0.0.33")
#: The first TV plays with Shaka (what a Cast receiver runs), the others with light FFmpeg.
TV_PLAYERS = ("shaka", "ffmpeg", "ffmpeg")
PAGE = "chaos-ticker.html"
DEFAULT_MEDIA_RECEIVER = "CC1AD845"


@dataclass
class Usage:
    """The service process's own resources (not its children's)."""

    rss: int
    fds: int
    threads: int


class Rig:
    def __init__(self, tvs: list[Any], pages_url: str, workdir: Path, serve_flags: Sequence[str], logs: Path | None = None):
        self.tvs = tvs
        self.pages_url = pages_url
        self.workdir = workdir
        self.serve_flags = list(serve_flags)
        self.logs = logs  # each pagecast serve's log goes to a file here, if set
        self.scenario = "chaos"
        self._served = 0

    @property
    def page(self) -> str:
        return f"{self.pages_url}/{PAGE}"

    @contextlib.asynccontextmanager
    async def serve(self, *flags: str) -> AsyncIterator[Pagecast]:
        self._served += 1
        log_to = self.logs / f"{self._served:02d}-{self.scenario}.log" if self.logs is not None else None
        async with open_pagecast(self.workdir, [*self.serve_flags, *flags], log_to=log_to) as pc:
            yield pc

    async def reset_tvs(self) -> None:
        """Every TV back on its idle screen, on the network and awake, before a scenario."""
        for tv in self.tvs:
            tv.restore_network()
            if tv.state()["standby"]:
                tv.standby(False)
            if not tv.state()["idle_screen"]:
                tv.remote_quit()
        await trio.sleep(0.3)


@contextlib.asynccontextmanager
async def open_rig(workdir: Path, hosts: Sequence[str] = TV_HOSTS, serve_flags: Sequence[str] = (), logs: Path | None = None) -> AsyncIterator[Rig]:
    from ..virtual_tv import open_virtual_tv

    flags = ["--cast-hosts", ",".join(hosts), "--mdns", "false", *serve_flags]
    async with contextlib.AsyncExitStack() as stack:
        opened = []
        for i, host in enumerate(hosts):
            opened.append(await stack.enter_async_context(
                open_virtual_tv(host=host, name=f"chaos TV {i + 1} ({TV_PLAYERS[i]})", player=TV_PLAYERS[i])
            ))
        pages = stack.enter_context(serve_pages())
        yield Rig(opened, pages, workdir, flags, logs)


# -- pagecast's processes, from the outside ------------------------------------------------


def usage(pid: int) -> Usage | None:
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            return Usage(p.memory_info().rss, p.num_fds(), p.num_threads())
    except psutil.Error:
        return None


def child_pid(status: dict[str, Any], kind: str, service_pid: int) -> int | None:
    """The pid of a session's encoder or browser: from its /status when it says, else the only
    one of that kind under the service."""
    pid = ((status.get("children") or {}).get(kind) or {}).get("pid")
    if pid:
        return int(pid)
    test = is_ffmpeg if kind == "encoder" else is_browser
    found = [p.pid for p in descendants(service_pid) if test(p)]
    return found[0] if len(found) == 1 else None


def signal_pids(pids: Sequence[int], sig: signal.Signals) -> int:
    sent = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            sent += 1
    return sent


async def gone(procs: Sequence[psutil.Process], timeout: float) -> tuple[float, list[psutil.Process]]:
    """Seconds until all of ``procs`` have exited (or ``timeout``), and those still there."""
    t0 = time.monotonic()
    with trio.move_on_after(timeout):
        while alive(procs):
            await trio.sleep(0.02)
    return time.monotonic() - t0, alive(procs)


# -- sessions ---------------------------------------------------------------------------------


async def start_cast(pc: Pagecast, page: str, tv: Any, *, keep_on: bool = False, quality: str = "720p", share: bool = True) -> dict[str, Any]:
    """A session casting ``page`` to ``tv``, answered once the TV plays it. With ``share`` (the
    service's default) a /start of a page already rendered joins that render; without, every
    /start is a render of its own."""
    body = {"url": page, "device": tv.host, "keep_on": keep_on, "quality": quality, "share": share}
    r = await pc.client.post("/start?wait=1", json=body)
    data = r.json()
    if r.status_code >= 400 or data.get("state") != "live":
        raise RuntimeError(f"/start on {tv.name}: HTTP {r.status_code}: {data.get('error') or r.text[:300]}")
    return data


async def active_sessions(pc: Pagecast) -> list[dict[str, Any]]:
    data = (await pc.client.get("/status")).json()
    return [s for s in data.get("sessions", []) if s.get("state") in ("starting", "live", "stopping")]
