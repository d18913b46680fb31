"""Shared fixtures. Every test fails loudly if it leaves a child process or thread behind."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import trio

sys.path.insert(0, str(Path(__file__).parent))

# Trio's idle worker threads, and the request threads of the session-wide test page server.
IGNORED_THREAD_PREFIXES = ("Trio thread", "trio-", "asyncio_")


def _children() -> dict[int, str]:
    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out[p.pid] = " ".join(p.cmdline()[:3]) or p.name()
        except psutil.Error:
            pass
    return out


def _threads() -> set[str]:
    return {
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.name.startswith(IGNORED_THREAD_PREFIXES) and not t.name.endswith("(process_request_thread)")
    }


@pytest.fixture(autouse=True)
def no_leaks(request):
    """A test must end with no new child process and no new thread of ours alive."""
    before_procs = set(_children())
    before_threads = _threads()
    yield
    deadline = time.monotonic() + 1.0
    leaked = {}
    while time.monotonic() < deadline:
        leaked = {pid: cmd for pid, cmd in _children().items() if pid not in before_procs}
        if not leaked:
            break
        time.sleep(0.05)
    for pid in leaked:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    assert not leaked, f"test left child processes running: {leaked}"
    leaked_threads = _threads() - before_threads
    assert not leaked_threads, f"test left threads running: {sorted(leaked_threads)}"


@pytest.fixture(scope="session")
def pages():
    """Base URL of a local server with test pages (/dashboard.html) and failing routes."""
    from helpers import page_server

    with page_server() as url:
        yield url


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Base URL of a media server with other people's media: ``/live/<token>/index.m3u8``
    (see helpers.live_url) and ``/clip.mp4``."""
    from helpers import media_server

    with media_server(tmp_path_factory.mktemp("hls")) as url:
        yield url


@pytest.fixture
async def service(nursery, tmp_path):
    """A real pagecast service on 127.0.0.1 (random port), stopped at the end of the test."""
    from helpers import running_service

    async with running_service(nursery, tmp_path) as svc:
        yield svc


@pytest.fixture
async def client(service):
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}", timeout=30) as c:
        yield c
