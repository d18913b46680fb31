"""Shared fixtures. Every test fails loudly if it leaves a child process or thread behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pagecast.lowlevel.proc import command, descendants  # noqa: E402

# Trio's idle worker threads, and the request threads of the session-wide test page server.
IGNORED_THREAD_PREFIXES = ("Trio thread", "trio-", "asyncio_")


def _children() -> dict[int, str]:
    return {p.pid: " ".join(command(p)[:3]) for p in descendants()}


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
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
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


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**overrides): the settings of the test's `service`")
    config.addinivalue_line("markers", "slow: takes 10 s or more; started first, so that no worker ends the suite alone with one")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


@pytest.fixture
async def service(nursery, tmp_path, request):
    """A real pagecast service on 127.0.0.1 (random port), with the settings the test's
    ``@pytest.mark.settings(...)`` gives, stopped at the end of the test."""
    from helpers import running_service

    marker = request.node.get_closest_marker("settings")
    async with running_service(nursery, tmp_path, **(marker.kwargs if marker else {})) as svc:
        yield svc


@pytest.fixture
async def client(service):
    """An HTTP client of the ``service``'s API."""
    from helpers import client_of

    async with client_of(service) as c:
        yield c


@pytest.fixture
async def tv(request, nursery):
    """A virtual "Living Room TV" (FFmpeg player) at the test module's ``TV_HOST``."""
    from pagecast.virtual_tv import open_virtual_tv

    async with open_virtual_tv(host=request.module.TV_HOST, name="Living Room TV", player="ffmpeg") as tv:
        yield tv


@pytest.fixture
async def api(request, nursery, tmp_path):
    """A client of a casting service that knows the test module's ``CAST_HOSTS``."""
    from cast_helpers import casting_api

    async with casting_api(nursery, tmp_path, request.module.CAST_HOSTS) as client:
        yield client
