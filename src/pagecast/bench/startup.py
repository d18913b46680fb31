"""Section 2, startup: POST /start until a real player shows the first frame, since the time a
person waits is what the target is about, not when the server says live."""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import trio

from .context import PAGES, TARGETS, Context, describe
from .measure import fmt, table

STARTUP_REPEATS = 3


class SessionFailed(Exception):
    """A pagecast session failed while starting (the service's own error is the message)."""


async def _startup_once(ctx: Context, browser: Any, page: str, mode: str, player: str) -> dict[str, Any]:
    pc = ctx.pagecast
    t_post = time.time()
    r = await pc.client.post("/start", json={"url": page, "quality": "1080p", "mode": mode})
    session = r.json()
    if r.status_code >= 400:
        raise RuntimeError(f"POST /start: HTTP {r.status_code}: {session.get('error')}")
    sid = session["id"]
    tab = None
    try:
        with trio.fail_after(60):
            while True:
                status = await pc.status(sid)
                if status["state"] == "live":
                    break
                if status["state"] not in ("starting",):
                    raise SessionFailed(f"session {status['state']}: {status.get('error')}")
                await trio.sleep(0.02)
        t_live = time.time()
        tab = await browser.open(f"{pc.url}/watch/{sid}?player={player}")
        stats: dict[str, Any] = {}
        with trio.move_on_after(30):
            while not stats.get("firstFrameAt"):
                await trio.sleep(0.05)
                stats = await tab.stats() or {}
                if stats.get("errors"):
                    break
        if not stats.get("firstFrameAt"):
            raise RuntimeError(f"{player} showed no frame within 30 s; errors: {stats.get('errors')}")
        return {
            "seconds": round(stats["firstFrameAt"] / 1000 - t_post, 3),
            "live_after": round(t_live - t_post, 3),
            "server_startup": status.get("startup_seconds"),
            "player_seconds": round(stats["firstFrameAt"] / 1000 - t_live, 3),
        }
    finally:
        if tab is not None:
            with contextlib.suppress(Exception):
                await tab.close()
        await pc.stop(sid)


async def run(ctx: Context) -> None:
    from ..lowlevel.browser import open_player_browser

    page = ctx.page(PAGES["A"][0])
    results: dict[str, Any] = {}
    async with open_player_browser() as browser:
        for mode, player in (("fmp4", "native"), ("hls", "hlsjs")):
            runs = []
            for i in range(STARTUP_REPEATS):
                ctx.progress(f"startup: {mode} in {player}, run {i + 1}/{STARTUP_REPEATS}")
                for attempt in range(3):
                    try:
                        runs.append(await _startup_once(ctx, browser, page, mode, player))
                        break
                    except SessionFailed as exc:  # counted, then the run is done again
                        ctx.pagecast.start_failures.append(str(exc))
                        if attempt == 2:
                            runs.append({"error": str(exc)})
                    except Exception as exc:  # noqa: BLE001 - one failed run is a figure too
                        runs.append({"error": describe(exc)})
                        break
            ok = [r["seconds"] for r in runs if "seconds" in r]
            results[mode] = {
                "player": player,
                "runs": runs,
                "median": statistics.median(ok) if ok else None,
                "median_live_after": statistics.median([r["live_after"] for r in runs if "live_after" in r]) if ok else None,
                "median_player": statistics.median([r["player_seconds"] for r in runs if "player_seconds" in r]) if ok else None,
            }
    ctx.results["startup"] = results
    ctx.out("\n== 2. Startup: POST /start → first frame shown by a real player (player browser already running; page A, 1080p)")
    rows = []
    for mode, r in results.items():
        each = ", ".join(fmt(x.get("seconds"), 2) if "seconds" in x else "failed" for x in r["runs"])
        target = TARGETS[f"startup_{mode}"]
        rows.append([f"{mode} · {'Chromium native' if r['player'] == 'native' else 'hls.js'}", fmt(r["median"], 2, " s"), each,
                     fmt(r["median_live_after"], 2, " s"), fmt(r["median_player"], 2, " s"), f"≤ {target:g} s"])
    ctx.out(table(["mode · player", "median", "each run (s)", "→ live", "live → frame", "target"], rows))
    for mode, r in results.items():
        for x in r["runs"]:
            if "error" in x:
                ctx.out(f"  {mode}: a run failed: {x['error']}")
    ctx.out("  → live: POST until /sessions/<id> says live (polled every 20 ms); live → frame: opening the watch page until"
            " the player's first frame (requestVideoFrameCallback).")
