"""The service as a process: SIGTERM stops everything within 10 s and exits 0; even a
SIGKILL (no chance to clean up) leaves no FFmpeg or Chromium running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from helpers import wait_for
from pagecast.lowlevel.proc import alive, descendants, is_chromium, is_ffmpeg


@pytest.fixture
def serve(tmp_path):
    """Run `pagecast serve` on a free port; yields (process, base_url)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PAGECAST_RUNTIME_DIR": str(tmp_path / "rt"), "PAGECAST_STATE_DIR": str(tmp_path / "state"), "PAGECAST_LOG_LEVEL": "info"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pagecast", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield proc, base
    finally:
        left = descendants(proc.pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for p in alive(left):
            p.kill()


async def _start_live(base: str, pages: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})
        assert r.status_code == 202 and r.json()["state"] == "live", r.text
        return r.json()


async def test_sigterm_stops_every_session_and_exits_zero_within_10_s(serve, pages):
    proc, base = serve
    await _start_live(base, pages)
    children = descendants(proc.pid)
    assert descendants(proc.pid, is_ffmpeg) and descendants(proc.pid, is_chromium)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await wait_for(proc.poll, lambda rc: rc is not None, timeout=10)
    elapsed = time.monotonic() - t0
    output = proc.stdout.read()
    assert proc.returncode == 0, output
    assert elapsed < 10
    assert not alive(children), alive(children)
    assert "received SIGTERM" in output


async def test_sigkill_of_the_service_leaves_no_ffmpeg_or_chromium(serve, pages):
    proc, base = serve
    await _start_live(base, pages)
    children = descendants(proc.pid)
    assert descendants(proc.pid, is_ffmpeg) and descendants(proc.pid, is_chromium)
    proc.kill()
    proc.wait()
    await wait_for(lambda: alive(children), lambda left: not left, timeout=5)


def test_runtime_dirs_left_by_a_dead_service_are_removed_at_start(tmp_path):
    from pagecast.server.service import prepare_runtime_dir
    from pagecast.core.settings import Settings

    dead = tmp_path / "999999999"
    (dead / "chromium-x").mkdir(parents=True)
    alive = tmp_path / "1"  # pid 1 always exists
    alive.mkdir()
    settings = prepare_runtime_dir(Settings.from_env({}, runtime_dir=str(tmp_path)))
    assert not dead.exists() and alive.exists()
    assert settings.runtime_dir == str(tmp_path / str(os.getpid()))


def test_json_logs_are_one_object_per_line():
    import json
    import logging

    from pagecast.cli import JsonFormatter

    record = logging.LogRecord("pagecast.test", logging.WARNING, __file__, 1, "session %s failed", ("abc",), None)
    data = json.loads(JsonFormatter().format(record))
    assert data["level"] == "warning" and data["msg"] == "session abc failed" and data["logger"] == "pagecast.test"


def test_the_log_says_at_start_which_url_tvs_will_fetch_and_warns_when_they_cannot_reach_it(serve):
    """`pagecast serve --host 127.0.0.1`: TVs are told a loopback URL, which none can fetch."""
    proc, base = serve
    lines = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any("TVs cannot reach" in line for line in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    told = [line for line in lines if "TVs will fetch streams from" in line]
    assert told and f"TVs will fetch streams from {base} (set PAGECAST_PUBLIC_URL to change it)" in told[0], lines
    [warning] = [line for line in lines if "TVs cannot reach" in line]
    assert "WARNING" in warning and "127.0.0.1 is this machine's loopback address" in warning and "set PAGECAST_PUBLIC_URL" in warning
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
