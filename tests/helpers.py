"""Test infrastructure: a local page server, a pagecast service running in-process, waiting
on its answers and finding the processes it runs."""

from __future__ import annotations

import contextlib
import http.server
import inspect
import os
import re
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
import trio

from pagecast.lowlevel.proc import descendants, is_chromium, is_ffmpeg

PAGES = Path(__file__).parent / "pages"


def real_home_assistant() -> list[pytest.MarkDecorator]:
    """The marks of a test against a real Home Assistant: skipped where none is installed, one
    at a time (each Home Assistant is heavy), started first."""
    from pagecast.bench.homeassistant import installed

    return [
        pytest.mark.slow,
        pytest.mark.xdist_group("home-assistant"),
        pytest.mark.ha,
        pytest.mark.skipif(not installed(), reason="Home Assistant is not installed here: `pagecast bench --only ha` installs it"),
        pytest.mark.timeout(240),
    ]


def lo(address: str) -> str:
    """A test's fixed loopback address (a virtual TV's: Cast listens on port 8009), moved to
    127.(100 + n).x.y on xdist worker ``gwn``: tests on different workers then never share
    an address, so the suite can spread single tests, not whole files, over its workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return address
    a, _, c, d = address.split(".")
    return f"{a}.{100 + int(worker[2:])}.{c}.{d}"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Test pages plus the ways a real dashboard server fails."""

    served: ClassVar[set[str]] = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/missing":
            return self._send(404, b"<h1>Not Found</h1>")
        if path == "/broken":
            return self._send(500, b"<h1>Internal Server Error</h1>")
        if path == "/ha/lovelace":
            self.send_response(302)
            self.send_header("Location", "/auth/authorize?response_type=code&client_id=x")
            self.end_headers()
            return
        if path == "/auth/authorize":
            return self._send(200, b"<html><body><form>Log in</form></body></html>")
        if path == "/hang":
            time.sleep(30)
            return
        if path.startswith("/once/"):
            # The dashboard the first time, an error ever after: a page that a second browser cannot load.
            if path in _Handler.served:
                return self._send(500, b"<h1>Internal Server Error</h1>")
            _Handler.served.add(path)
            return self._send(200, (PAGES / "dashboard.html").read_bytes())
        file = PAGES / path.lstrip("/")
        if path.endswith(".html") and file.is_file():
            return self._send(200, file.read_bytes())
        return self._send(404, b"no such page")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@contextmanager
def page_server():
    from pagecast.lowlevel.httpserve import serve_http

    with serve_http(_Handler, "test-page-server") as url:
        yield url


def ffmpeg_fmp4(seconds: float, fps: int, size: str = "160x90", keyframes: str = "expr:gte(t,n_forced*1)") -> bytes:
    """Real FFmpeg fragmented-MP4 output, H.264 + AAC like the encoder's (keyframe every second
    by default; fragments of ~100 ms rather than the encoder's one per frame, for fewer of them)."""
    return subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}",
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-force_key_frames", keyframes, "-c:a", "aac",
            "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", "100000", "pipe:1",
        ],
        check=True, capture_output=True,
    ).stdout


# ----------------------------------------------------------------------------- media server
# Other people's media, for a virtual TV to play: what a session must not interrupt, and must
# give back.

LIVE_SEGMENTS = 40


class MediaHandler(http.server.BaseHTTPRequestHandler):
    """A live HLS stream cut from a VOD one: ``/live/<token>/index.m3u8`` starts its clock at
    the first request for that token, lists a 4-segment window with 3 segments already there,
    and gains one per second; ``?stall_after=N`` stops it growing after N segments."""

    root: Path
    clips: dict[str, bytes]
    clocks: ClassVar[dict[str, float]] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        m = re.fullmatch(r"/live/([^/]+)/(.+)", path)
        if m and m.group(2) == "index.m3u8":
            return self._send(200, self._live_playlist(m.group(1), params).encode(), "application/vnd.apple.mpegurl")
        if m and (self.root / m.group(2)).is_file():
            return self._send(200, (self.root / m.group(2)).read_bytes(), "video/mp4")
        if path.lstrip("/") in self.clips:
            return self._send(200, self.clips[path.lstrip("/")], "video/mp4")
        return self._send(404, b"not found", "text/plain")

    def _live_playlist(self, token: str, params: dict[str, str]) -> str:
        started = self.clocks.setdefault(token, time.monotonic())
        available = min(LIVE_SEGMENTS, 3 + int(time.monotonic() - started))
        if "stall_after" in params:
            available = min(available, int(params["stall_after"]))
        first = max(0, available - 4)
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first}", '#EXT-X-MAP:URI="init.mp4"']
        for i in range(first, available):
            lines += ["#EXTINF:1.000000,", f"seg{i:03d}.m4s"]
        return "\n".join(lines) + "\n"

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")  # Cast receivers need CORS
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass



@contextlib.contextmanager
def media_server(root: Path):
    """Base URL of the media server: ``/live/<token>/index.m3u8``, ``/clip.mp4`` (3 s of
    progressive fragmented MP4), anything else 404."""
    from pagecast.lowlevel.httpserve import serve_http

    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", "testsrc2=s=160x90:r=15", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
            "-t", str(LIVE_SEGMENTS), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-force_key_frames", "expr:gte(t,n_forced*1)", "-c:a", "aac", "-b:a", "32k",
            "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(root / "seg%03d.m4s"), str(root / "vod.m3u8"),
        ],
        check=True, capture_output=True,
    )
    handler = type("Handler", (MediaHandler,), {"root": root, "clips": {"clip.mp4": ffmpeg_fmp4(3, 15)}, "clocks": {}})
    with serve_http(handler, "test-media-server") as url:
        yield url


def live_url(media: str, request, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{media}/live/{request.node.name}-{time.monotonic_ns()}/index.m3u8" + (f"?{query}" if query else "")


#: Per worker process, the first finished encoder probe of each (ffmpeg, encoder, device)
#: setting: the machine does not change between tests, and a probe costs ~0.7 s a service.
_PROBES: dict[tuple[str, str, str], Any] = {}


@contextlib.asynccontextmanager
async def running_service(nursery, tmp_path: Path, **overrides):
    """A real pagecast service on 127.0.0.1 (random port) with ``overrides`` as settings; its
    encoder probe is done (the worker's first one of the same setting, reused), so every
    FFmpeg that runs afterwards is a session's. Stopped (and waited for) at the end of the block."""
    from functools import partial

    from pagecast.core.settings import Settings
    from pagecast.server.service import Service
    from pagecast.session.encoder_probe import EncoderChoice

    settings = Settings.from_env({}, **{"host": "127.0.0.1", "port": 0, "runtime_dir": str(tmp_path / "runtime"), "load_timeout": 10.0, "mdns": False,
                                       "announce": False, "state_dir": str(tmp_path / "state"), **overrides})
    key = (settings.ffmpeg, settings.encoder, settings.vaapi_device)
    svc = Service(settings, encoders=EncoderChoice.probed_like(_PROBES[key]) if key in _PROBES else None)
    await nursery.start(partial(svc.run, handle_signals=False))
    with trio.fail_after(10):
        await svc.encoders.done.wait()
    _PROBES.setdefault(key, svc.encoders)
    try:
        yield svc
    finally:
        svc.shutdown()
        with trio.fail_after(20):
            await svc.stopped.wait()


def client_of(svc, **options):
    """An HTTP client of ``svc``'s API, to use as ``async with``."""
    import httpx

    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", **{"timeout": 30, **options})


# ----------------------------------------------------------------------------- waiting

async def wait_for(ask: Callable[[], Any | Awaitable[Any]], predicate: Callable[[Any], Any] = bool, *, timeout: float = 20.0, every: float = 0.05) -> Any:
    """The first answer of ``ask()`` (awaited if it must be) that ``predicate`` accepts, asking
    every ``every`` s; fails the test after ``timeout`` s."""
    with trio.fail_after(timeout):
        while True:
            answer = ask()
            if inspect.isawaitable(answer):
                answer = await answer
            if predicate(answer):
                return answer
            await trio.sleep(every)


async def session(client, sid: str) -> dict:
    """A session's /sessions/<id> answer."""
    return (await client.get(f"/sessions/{sid}")).json()


async def wait_state(client, sid: str, *states: str, timeout: float = 20.0) -> dict:
    """A session's answer once it is in one of ``states``."""
    return await wait_for(lambda: session(client, sid), lambda d: d["state"] in states, timeout=timeout)


def media_processes() -> list[psutil.Process]:
    """Every Chromium and FFmpeg process under the test."""
    return descendants(kind=lambda p: is_chromium(p) or is_ffmpeg(p))


async def no_media_processes(timeout: float = 5.0) -> None:
    """Wait until every Chromium and FFmpeg under the test has gone."""
    await wait_for(media_processes, lambda procs: not procs, timeout=timeout)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise AssertionError("no SOF marker")


def drained(recv) -> list:
    """Everything waiting in a Trio receive channel now, without waiting for more."""
    out = []
    while True:
        try:
            out.append(recv.receive_nowait())
        except trio.WouldBlock:
            return out
