"""Launching the headless shell for a page: its command line, and waiting for its DevTools URL."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import trio

from ..core.errors import RenderError
from ..core.geometry import window_geometry
from ..core.page import PageSpec
from ..core.request import redact_urls_in
from ..core.settings import Settings
from ..lowlevel.binaries import find_chromium
from ..lowlevel.proc import Child, LineTail

chromium_log = logging.getLogger("pagecast.session.render.chromium")

#: Seconds Chromium may take to print its DevTools URL.
STARTUP_TIMEOUT = 20.0

CHROMIUM_FLAGS = (
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
    "--enable-begin-frame-control",
    "--run-all-compositor-stages-before-draw",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


#: What Chromium prints on every machine without a desktop session: not a reason for anything.
NOISE = re.compile(
    r"DevTools listening|dbus|Failed to connect to the bus|org\.freedesktop|Fontconfig"
    r"|drmGetDevices|vaapi_wrapper|InitializeSandbox\(\) called with multiple threads",
    re.I,
)


def last_lines(tail: LineTail, n: int = 6) -> str:
    """Chromium's last words for an error message: its last lines, without known noise."""
    lines = [line for line in tail.lines if not NOISE.search(line)][-n:]
    return redact_urls_in(" | ".join(lines)) if lines else "(no output)"


def chromium_binary(settings: Settings) -> str:
    """PAGECAST_CHROMIUM, or the headless shell this machine has."""
    return settings.chromium or find_chromium()


def sandboxed(settings: Settings) -> bool:
    """PAGECAST_CHROMIUM_SANDBOX, or on unless we run as root (Chromium refuses it as root)."""
    return settings.chromium_sandbox if settings.chromium_sandbox is not None else os.geteuid() != 0


def runtime_base(settings: Settings) -> Path:
    """Where sessions' Chromium profiles go: PAGECAST_RUNTIME_DIR, or ``pagecast`` in the temp dir."""
    return Path(settings.runtime_dir or Path(tempfile.gettempdir()) / "pagecast")


def chromium_argv(settings: Settings, spec: PageSpec, profile: Path) -> list[str]:
    _, _, scale = window_geometry(spec.width, spec.height, spec.device_scale_factor)
    argv = [chromium_binary(settings), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if scale != 1:
        argv.append(f"--force-device-scale-factor={scale!r}")
    if not sandboxed(settings):
        argv.append("--no-sandbox")
    argv.append("about:blank")
    return argv


async def devtools_url(child: Child, tail: LineTail, settings: Settings) -> str:
    assert child.stderr is not None
    with trio.move_on_after(STARTUP_TIMEOUT):
        while True:
            try:
                data = await child.stderr.receive_some(65536)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                data = b""
            if not data:
                with trio.move_on_after(2):
                    await child.wait()
                raise RenderError(
                    f"Chromium ({chromium_binary(settings)}) exited before it was ready ({child!r}); "
                    f"its last output: {last_lines(tail)} — check PAGECAST_CHROMIUM and PAGECAST_CHROMIUM_SANDBOX"
                )
            for line in tail.feed(data):
                chromium_log.debug("%s", redact_urls_in(line))
                if "DevTools listening on " in line:
                    return line.split("DevTools listening on ", 1)[1].strip()
    raise RenderError(f"Chromium ({chromium_binary(settings)}) did not start within {STARTUP_TIMEOUT:g} s; its last output: {last_lines(tail)}")
