"""Running a pagecast and driving it, for the bench and for ``pagecast chaos``: ``pagecast serve``
as an owned child with a client for its API, the reference pipeline (Xvfb + Chromium kiosk +
``ffmpeg -f x11grab``), and the server of the bench pages. Each is an owned child (or thread), stopped when its block ends,
on errors and on Ctrl-C too."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ..lowlevel.httpserve import serve_http
from ..lowlevel.proc import Child, LineTail, StopPolicy, descendants, is_renderer, open_child, pump_lines

STATIC = Path(__file__).parents[1] / "static"
REFERENCE_CHROMIUM = "/usr/lib/chromium/chromium"
CHILD_POLICY = StopPolicy(polite_timeout=3.0, term_timeout=3.0)


class Unavailable(Exception):
    """A case that cannot run on this machine; the message says why (printed instead of a number)."""


# ---------------------------------------------------------------------------------------
# Owned children


@contextlib.asynccontextmanager
async def owned(
    argv: Sequence[str],
    name: str,
    *,
    on_stderr: Callable[[str], None] | None = None,
    on_stdout: Callable[[str], None] | None = None,
    polite: Callable[[Child], Any] | None = None,
    policy: StopPolicy = CHILD_POLICY,
    stdin: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Child, LineTail]]:
    """A child whose output is drained (so it never blocks on a full pipe) until it exits;
    stopped at the end of the block, before the draining stops."""
    tail = LineTail(keep=40)
    async with (
        open_child(argv, name=name, polite=polite, policy=policy, stdin=stdin, stdout=on_stdout is not None, stderr=True, env=env) as child,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(pump_lines, child.stderr, tail, on_stderr or (lambda line: None))
        if on_stdout is not None:
            nursery.start_soon(pump_lines, child.stdout, LineTail(keep=4), on_stdout)
        try:
            yield child, tail
        finally:
            with trio.CancelScope(shield=True):
                await child.stop((lambda: polite(child)) if polite is not None else None, policy)
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------
# The page server: bench pages from static/, on 127.0.0.1, port 0


#: A page that never changes after it has loaded: page A without its once-a-second tick.
STILL_PAGE = "bench-still.html"


def still_page() -> bytes:
    """Page A drawn once: its loop that changes the values every second is left out."""
    text = (STATIC / "bench-dashboard.html").read_text()
    kept = [line for line in text.splitlines() if not line.startswith("setTimeout(function loop()")]
    return "\n".join(kept).encode()


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] != f"/{STILL_PAGE}":
            return super().do_GET()
        body = still_page()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve_pages() -> Iterator[str]:
    """Base URL of the bench pages; a thread serves them until the block ends."""
    with serve_http(functools.partial(_PageHandler, directory=str(STATIC)), "bench-pages") as url:
        yield url


# ---------------------------------------------------------------------------------------
# pagecast serve, as a subprocess


def _import_httpx():
    try:
        import httpx
    except ImportError:
        raise Unavailable("pagecast bench needs httpx: install the test extras (ops/install, or pip install -e '.[test]')") from None
    return httpx


class Pagecast:
    """A running ``pagecast serve`` and an HTTP client for its control API."""

    def __init__(self, child: Child, url: str, client: Any, tail: LineTail, warnings: list[str]):
        self.child = child
        self.url = url
        self.client = client
        self.tail = tail
        self.warnings = warnings
        self.start_failures: list[str] = []  # sessions that failed while starting (retried, and reported)
        self.exited_early = False  # pagecast serve was gone before we stopped it

    def roots(self) -> list[int]:
        return [self.child.pid]

    async def start(self, page: str, mode: str = "hls", *, quality: str = "1080p", attempts: int = 3, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start a session and wait until it is live. A session that fails while starting is
        retried (a flaky start should not void a whole CPU window) but counted in
        ``start_failures``, which the summary prints."""
        for attempt in range(attempts):
            r = await self.client.post("/start?wait=1", json={"url": page, "quality": quality, "mode": mode, **(extra or {})})
            data = r.json()
            if r.status_code < 400 and data.get("state") == "live":
                return data
            error = f"HTTP {r.status_code}: {data.get('error') or r.text[:300]}"
            if data.get("state") != "failed" or attempt == attempts - 1:
                raise RuntimeError(f"pagecast could not start {page} ({mode}): {error}")
            self.start_failures.append(error)
        raise AssertionError("unreachable")

    async def status(self, session_id: str) -> dict[str, Any]:
        return (await self.client.get(f"/sessions/{session_id}")).json()

    async def stop(self, session_id: str | None = None) -> None:
        """Stop one session (or all) and wait until its processes are gone."""
        await self.client.post("/stop", json={"id": session_id} if session_id else {})
        with trio.move_on_after(20):
            while True:
                if session_id:
                    if (await self.status(session_id)).get("state") not in ("starting", "live", "stopping"):
                        break
                elif (await self.client.get("/status")).json().get("active", 0) == 0:
                    break
                await trio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_pagecast(workdir: Path, flags: Sequence[str] = (), log_to: Path | None = None) -> AsyncIterator[Pagecast]:
    """``pagecast serve`` as an owned child; ``log_to``: a file that gets its whole log."""
    httpx = _import_httpx()
    argv = [
        sys.executable, "-m", "pagecast", "serve", "--host", "127.0.0.1", "--port", "0",
        "--runtime-dir", str(workdir / "runtime"), "--log-level", "info", "--log-format", "text", *flags,
    ]
    found: list[str] = []
    warnings: list[str] = []

    with contextlib.ExitStack() as files:
        log_file = files.enter_context(open(log_to, "a", encoding="utf-8")) if log_to is not None else None

        def on_line(line: str) -> None:
            if log_file is not None:
                log_file.write(line + "\n")
            m = re.search(r"pagecast listening on (\S+)", line)
            if m and not found:
                found.append(m.group(1))
            # The bench's TVs are virtual, on loopback: that TVs elsewhere could not reach it is no fault here.
            if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line) and "TVs cannot reach" not in line:
                warnings.append(line)

        async def polite(child: Child) -> None:
            # SIGTERM to pagecast alone: its graceful shutdown stops its Chromium and FFmpeg.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            await child.wait()

        async with owned(argv, "pagecast", on_stderr=on_line, polite=polite, policy=StopPolicy(polite_timeout=15.0, term_timeout=3.0)) as (child, tail):
            with trio.move_on_after(30):
                while not found and child.poll() is None:
                    await trio.sleep(0.05)
            if not found:
                raise RuntimeError(f"pagecast serve did not start ({child!r}): {tail.text()[-1500:]}")
            token = os.environ.get("PAGECAST_API_TOKEN", "")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with httpx.AsyncClient(base_url=found[0], timeout=90, headers=headers) as client:
                pc = Pagecast(child, found[0], client, tail, warnings)
                try:
                    yield pc
                finally:
                    pc.exited_early = child.poll() is not None


# ---------------------------------------------------------------------------------------
# The reference pipeline: Xvfb + Chromium kiosk + ffmpeg -f x11grab, 1080p30, libx264 medium 5 Mb/s


@dataclass
class Reference:
    roots: list[int]
    progress: dict[str, str] = field(default_factory=dict)

    def frames(self) -> int:
        try:
            return int(self.progress.get("frame", "0"))
        except ValueError:
            return 0


def _free_display() -> int:
    for n in range(99, 300):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise Unavailable("no free X display number between :99 and :299")


async def _open_with_script(chromium: Child, devtools: list[str], page_url: str, script: str, tail: LineTail) -> None:
    """Open ``page_url`` in the reference's window with ``script`` run before the page's own."""
    from ..lowlevel.cdp import open_cdp

    with trio.move_on_after(20):
        while not devtools and chromium.poll() is None:
            await trio.sleep(0.05)
    if not devtools:
        raise Unavailable(f"the reference Chromium did not open DevTools ({chromium!r}): {tail.text()[-500:]}")
    async with open_cdp(devtools[0]) as cdp:
        pages = []
        with trio.move_on_after(10):
            while not pages:
                pages = [t for t in (await cdp.execute("Target.getTargets"))["targetInfos"] if t.get("type") == "page"]
                await trio.sleep(0.1)
        if not pages:
            raise Unavailable("the reference Chromium opened no window")
        attached = await cdp.execute("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True})
        page = cdp.session(attached["sessionId"])
        await page.execute("Page.enable")
        await page.execute("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        # Loaded before DevTools goes: the script is the session's, and leaves with it.
        async with page.listen("Page.loadEventFired") as events:
            await page.execute("Page.navigate", {"url": page_url})
            with trio.move_on_after(30):
                async for _ in events:
                    break


@contextlib.asynccontextmanager
async def open_reference(page_url: str, workdir: Path, *, before_load: str | None = None) -> AsyncIterator[Reference]:
    """The reference pipeline (Xvfb, Chromium in kiosk mode, ``ffmpeg -f x11grab``), running on ``page_url`` until the block ends.
    ``before_load``: a script run in the page before its own (a Home Assistant login in
    localStorage, the way pagecast gives it), set over DevTools before the page is opened."""
    for binary, why in (("Xvfb", "the xvfb package"), (REFERENCE_CHROMIUM, "the chromium package"), ("ffmpeg", "the ffmpeg package")):
        if not shutil.which(binary):
            raise Unavailable(f"{binary} is not installed ({why}; ops/install installs it)")
    display = _free_display()
    async with contextlib.AsyncExitStack() as stack:
        xvfb, xtail = await stack.enter_async_context(
            owned(["Xvfb", f":{display}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"], "xvfb")
        )
        socket_path = Path(f"/tmp/.X11-unix/X{display}")
        with trio.move_on_after(10):
            while not socket_path.exists() and xvfb.poll() is None:
                await trio.sleep(0.05)
        if not socket_path.exists():
            raise Unavailable(f"Xvfb :{display} did not start ({xvfb!r}): {xtail.text()[-500:]}")
        profile = Path(tempfile.mkdtemp(prefix="reference-chromium-", dir=workdir))
        devtools: list[str] = []

        def on_chromium_line(line: str) -> None:
            if "DevTools listening on " in line and not devtools:
                devtools.append(line.split("DevTools listening on ", 1)[1].strip())

        chromium, ctail = await stack.enter_async_context(owned(
            [
                REFERENCE_CHROMIUM, "--kiosk", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080", "--window-position=0,0",
                f"--user-data-dir={profile}", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run",
                *(["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"] if before_load else [page_url]),
            ],
            "reference-chromium",
            on_stderr=on_chromium_line,
            env={**os.environ, "DISPLAY": f":{display}"},
        ))
        if before_load:
            await _open_with_script(chromium, devtools, page_url, before_load, ctail)
        with trio.move_on_after(20):
            while not descendants(chromium.pid, is_renderer) and chromium.poll() is None:
                await trio.sleep(0.1)
        if chromium.poll() is not None or not descendants(chromium.pid, is_renderer):
            raise Unavailable(f"Chromium did not open the page on Xvfb ({chromium!r}): {ctail.text()[-500:]}")
        reference = Reference(roots=[xvfb.pid, chromium.pid])

        def on_progress(line: str) -> None:
            key, _, value = line.partition("=")
            reference.progress[key.strip()] = value.strip()

        async def quit_ffmpeg(child: Child) -> None:
            if child.stdin is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    await child.stdin.send_all(b"q")

        ffmpeg, ftail = await stack.enter_async_context(owned(
            [
                "ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
                "-f", "x11grab", "-framerate", "30", "-video_size", "1920x1080", "-i", f":{display}",
                "-c:v", "libx264", "-preset", "medium", "-b:v", "5M", "-pix_fmt", "yuv420p", "-f", "mpegts", "-y", "/dev/null",
            ],
            "reference-ffmpeg",
            on_stdout=on_progress,
            polite=quit_ffmpeg,
            stdin=True,
        ))
        with trio.move_on_after(10):
            while reference.frames() == 0 and ffmpeg.poll() is None:
                await trio.sleep(0.1)
        if reference.frames() == 0:
            raise Unavailable(f"ffmpeg -f x11grab produced no frame ({ffmpeg!r}): {ftail.text()[-500:]}")
        reference.roots.append(ffmpeg.pid)
        yield reference
