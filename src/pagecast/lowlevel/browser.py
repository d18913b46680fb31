"""Real players in a headless Chromium, read back over DevTools.

The end-to-end tests and the benchmark open pagecast's own watch page with hls.js, Shaka
Player (both from the pinned npm packages) or Chromium's native player, and read the figures
the page keeps in ``window.pagecastStats``: first frame, stalls, errors, frames, latency.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from .cdp import CdpConnection, open_cdp
from .proc import LineTail, StopPolicy, open_child, pump_lines

log = logging.getLogger(__name__)

PLAYER_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--remote-debugging-port=0",
    "--window-size=1280,760",
]


class PlayerTab:
    """One page in the player browser."""

    def __init__(self, cdp: CdpConnection, target_id: str, session_id: str):
        self.cdp = cdp
        self.target_id = target_id
        self.session_id = session_id

    async def evaluate(self, expression: str) -> Any:
        result = await self.cdp.execute(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session_id=self.session_id
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"page script failed: {details.get('text')} {(details.get('exception') or {}).get('description', '')}".rstrip())
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        """The tab as a PNG, as a person would see it."""
        shot = await self.cdp.execute("Page.captureScreenshot", {"format": "png"}, session_id=self.session_id)
        return base64.b64decode(shot["data"])

    async def stats(self) -> dict[str, Any]:
        raw = await self.evaluate("JSON.stringify(window.pagecastStats || null)")
        return json.loads(raw) if raw else {}

    async def close(self) -> None:
        await self.cdp.execute("Target.closeTarget", {"targetId": self.target_id})


class PlayerBrowser:
    def __init__(self, cdp: CdpConnection):
        self.cdp = cdp

    async def open(self, url: str) -> PlayerTab:
        target = await self.cdp.execute("Target.createTarget", {"url": "about:blank", "newWindow": True})  # own window: a background tab would not play
        target_id = target["targetId"]
        attached = await self.cdp.execute("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        tab = PlayerTab(self.cdp, target_id, attached["sessionId"])
        await self.cdp.execute("Page.navigate", {"url": url}, session_id=tab.session_id)
        return tab


@asynccontextmanager
async def open_player_browser(chromium: str | None = None) -> AsyncIterator[PlayerBrowser]:
    """A headless Chromium (the full browser, with its media stack) for playing streams."""
    binary = chromium or shutil.which("/usr/lib/chromium/chromium") or shutil.which("chromium") or "chromium"
    profile = Path(tempfile.mkdtemp(prefix="pagecast-player-"))
    tail = LineTail(keep=30)
    try:
        async with open_child(
            [binary, *PLAYER_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            name="player-chromium",
            policy=StopPolicy(polite_timeout=0.1, term_timeout=2.0),
        ) as child:
            assert child.stderr is not None
            ws_url = None
            with trio.fail_after(20):
                while ws_url is None:
                    data = await child.stderr.receive_some(65536)
                    if not data:
                        raise RuntimeError(f"player Chromium exited: {tail.text()}")
                    for line in tail.feed(data):
                        if "DevTools listening on " in line:
                            ws_url = line.split("DevTools listening on ", 1)[1].strip()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump_lines, child.stderr, tail, lambda line: log.debug("player: %s", line))
                async with open_cdp(ws_url) as cdp:
                    yield PlayerBrowser(cdp)
                nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
