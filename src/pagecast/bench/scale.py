"""Section scale: 1, 2 and 4 Home Assistant dashboard sessions at once (1080p hls, kiosk view),
each with a player (hls.js in a headless browser) watching it, for what a small box carries:
CPU and memory of pagecast's tree, frames captured, and the players' stalls."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import trio

from .context import WARMUP, Context
from .ha import ha_body, home_assistant
from .measure import fmt, machine_busy, measure, table

#: pagecast's target: 4 dashboards with no stall over a minute.
LONG_WINDOW = 60.0
OPTIONS = {"kiosk": True}


async def run(ctx: Context) -> None:
    from ..lowlevel.browser import open_player_browser

    pc = ctx.pagecast
    ha = home_assistant(ctx)
    results: dict[str, Any] = {}
    ctx.progress("scale: pagecast with no session")
    idle = await measure(pc.roots, min(ctx.seconds, 5.0))
    results["0"] = {**idle.to_dict(), "sessions": 0}
    sessions: list[str] = []
    tabs: list[Any] = []
    async with open_player_browser() as browser:
        try:
            for n in (1, 2, 4):
                seconds = LONG_WINDOW if n == 4 else ctx.seconds
                ctx.progress(f"scale: {n} Home Assistant dashboard session(s), a player on each, {seconds:g} s")
                while len(sessions) < n:
                    sid = (await pc.start(ha.dashboard_url, "hls", extra=ha_body(ha, OPTIONS)))["id"]
                    sessions.append(sid)
                    tabs.append(await browser.open(f"{pc.url}/watch/{sid}?player=hlsjs"))
                await trio.sleep(WARMUP + 3)  # the players start too
                before = [await pc.status(s) for s in sessions]
                stats0 = [await tab.stats() or {} for tab in tabs]
                busy0, t0 = machine_busy(), time.time()
                window = await measure(pc.roots, seconds)
                busy1, t1 = machine_busy(), time.time()
                stats1 = [await tab.stats() or {} for tab in tabs]
                after = [await pc.status(s) for s in sessions]
                captured = sum(a["frames"]["captured"] - b["frames"]["captured"] for a, b in zip(after, before))
                results[str(n)] = {
                    **window.to_dict(), "sessions": n, "seconds": round(window.seconds, 1),
                    "fps_captured_per_stream": round(captured / n / window.seconds, 2),
                    "live": sum(a["state"] == "live" for a in after),
                    "stalls": sum((s1.get("stalls") or 0) - (s0.get("stalls") or 0) for s0, s1 in zip(stats0, stats1)),
                    "playing": sum(1 for s in stats1 if s.get("firstFrameAt")),
                    "player_errors": [e for s in stats1 for e in (s.get("errors") or [])][:3],
                    "machine_pct": round(100 * (busy1 - busy0) / (t1 - t0), 1),
                }
        finally:
            for tab in tabs:
                with contextlib.suppress(Exception):
                    await tab.close()
            await pc.stop()
    ctx.results["scale"] = results
    ctx.out(f"\n== Scaling: n Home Assistant dashboard sessions at once (1080p hls, kiosk view; one Chromium + one FFmpeg each),"
            f" an hls.js player on each; {ctx.seconds:g} s window, {LONG_WINDOW:g} s for 4")
    base_pss = results["0"].get("pss_mb") or 0.0
    rows = []
    for r in results.values():
        n = r["sessions"]
        rows.append([
            str(n), fmt(r["cpu_pct"]), fmt(r["cpu_pct"] / n) if n else "—", fmt(r["pss_mb"], 0),
            fmt((r["pss_mb"] - base_pss) / n, 0) if n and r["pss_mb"] else "—",
            str(r["processes"]), fmt(r.get("fps_captured_per_stream")),
            f"{r['playing']} playing, {r['stalls']} stalls in {fmt(r['seconds'], 0)} s" if n else "—",
            fmt(r.get("machine_pct"), 0) if n else "—", fmt(r["other_pct"]),
        ])
    ctx.out(table(["streams", "CPU %", "CPU %/stream", "PSS MB", "added PSS/stream", "procs", "fps captured/stream",
                   "player stalls", "machine CPU %", "rest of machine %"], rows))
    for key, r in results.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["by_component"].items() if v >= 0.05)
        ctx.out(f"  {key} stream(s), CPU by process: {parts or '—'}")
        if r.get("player_errors"):
            ctx.out(f"  {key} stream(s), player errors: {r['player_errors']}")
    ctx.out("  CPU % is pagecast's tree (the service itself included); machine CPU % is every core's busy time (the"
            f" players and Home Assistant too), both as % of one core, of {100 * (os.cpu_count() or 1)} on this machine. Memory: PSS summed over"
            " pagecast's tree, median of samples every 2 s; added PSS/stream = (PSS − PSS with no session) / n.")
