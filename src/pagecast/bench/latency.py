"""Section 3, glass-to-glass latency: a time barcode drawn by the page and read back from every
frame the player shows, so the figure includes every buffer between the page and the screen."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import trio

from .context import FPS, WARMUP, Context
from .measure import fmt, machine_busy, ms_to_s, percentile, table

CLOCK_PAGE = "bench-clock.html"
LATENCY_SKIP = 3.0  # the first seconds after the first frame: players still settle
LOW_DELAY = 1.5  # the low-latency player setting (watch page ?delay=)


async def _latency_run(ctx: Context, browser: Any, sid: str, player: str, delay: float | None) -> dict[str, Any]:
    pc = ctx.pagecast
    url = f"{pc.url}/watch/{sid}?player={player}&measure=1" + (f"&delay={delay:g}" if delay is not None else "")
    run_seconds = max(ctx.seconds, LATENCY_SKIP + 5)
    tab = await browser.open(url)
    try:
        stats: dict[str, Any] = {}
        with trio.move_on_after(30):
            while not stats.get("firstFrameAt"):
                await trio.sleep(0.1)
                stats = await tab.stats() or {}
        if not stats.get("firstFrameAt"):
            raise RuntimeError(f"{player} showed no frame within 30 s; errors: {stats.get('errors')}")
        first_at = time.time()
        await trio.sleep(LATENCY_SKIP)
        skipped = len(((await tab.stats() or {})).get("latencies", []))
        busy0, t0 = machine_busy(), time.time()
        await trio.sleep(run_seconds - LATENCY_SKIP)
        busy1, t1 = machine_busy(), time.time()
        stats = await tab.stats() or {}
    finally:
        with contextlib.suppress(Exception):
            await tab.close()
    lat = stats.get("latencies", [])[skipped:]
    return {
        "player": player, "delay": delay,
        "median_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90), "samples": len(lat),
        "frames": stats.get("frames"), "stalls": stats.get("stalls"), "stall_seconds": round(stats.get("stallSeconds", 0.0), 2),
        "seeks": stats.get("seeks"), "errors": stats.get("errors"), "seconds": round(time.time() - first_at, 1),
        "machine_pct": round(100 * (busy1 - busy0) / (t1 - t0), 1),
        "fps_shown": round((stats.get("frames") or 0) / max(1e-6, time.time() - first_at), 1),
    }


async def run(ctx: Context) -> None:
    from ..lowlevel.browser import open_player_browser

    pc = ctx.pagecast
    page = ctx.page(CLOCK_PAGE)
    runs: list[dict[str, Any]] = []
    server: dict[str, Any] = {}
    async with open_player_browser() as browser:
        for mode, configs in (("hls", [("hlsjs", None), ("hlsjs", LOW_DELAY), ("shaka", None), ("shaka", LOW_DELAY)]), ("fmp4", [("native", None)])):
            ctx.progress(f"latency: starting a {mode} session on {CLOCK_PAGE}")
            session = await pc.start(page, mode)
            try:
                # Every player joins a stream that has been running a while, as a TV joins a
                # running cast: the first one would otherwise start near the live edge of a
                # playlist that holds only one segment, and the configurations would not compare.
                await trio.sleep(WARMUP)
                for player, delay in configs:
                    ctx.progress(f"latency: {mode} in {player}" + (f", delay {delay:g} s" if delay is not None else ", default settings"))
                    try:
                        runs.append({"mode": mode, **await _latency_run(ctx, browser, session["id"], player, delay)})
                    except Exception as exc:  # noqa: BLE001
                        runs.append({"mode": mode, "player": player, "delay": delay, "error": str(exc)})
                status = await pc.status(session["id"])
                pl = status.get("pipeline_latency_ms") or {}
                wait = 1000.0 / (2 * status.get("fps", FPS))
                server[mode] = {
                    "pipeline_latency_ms": pl, "capture_wait_ms": round(wait, 1),
                    "p50_ms": round(pl["p50"] + wait, 1) if pl else None, "p95_ms": round(pl["p95"] + wait, 1) if pl else None,
                    "frames": status.get("frames"),
                }
            finally:
                await pc.stop(session["id"])
    ctx.results["latency"] = {"runs": runs, "server": server}

    ctx.out(f"\n== 3. Glass-to-glass latency: {CLOCK_PAGE} at 1080p30, time barcode read from every displayed frame;"
            f" ~{max(ctx.seconds, LATENCY_SKIP + 5):g} s per player, first {LATENCY_SKIP:g} s skipped")
    rows = []
    for r in runs:
        setting = "default" if r.get("delay") is None else f"delay={r['delay']:g} s"
        name = {"hlsjs": "hls.js", "shaka": "Shaka", "native": "Chromium native"}[r["player"]]
        if "error" in r:
            rows.append([r["mode"], name, setting, "failed", "", "", "", ""])
            continue
        rows.append([r["mode"], name, setting, fmt(ms_to_s(r["median_ms"]), 2, " s"), fmt(ms_to_s(r["p90_ms"]), 2, " s"), str(r["stalls"]),
                     f"{r['samples']}", fmt(r["fps_shown"]), fmt(r["machine_pct"], 0)])
    ctx.out(table(["mode", "player", "setting", "median", "p90", "stalls", "barcodes read", "fps shown", "machine CPU %"], rows))
    for r in runs:
        if "error" in r:
            ctx.out(f"  {r['mode']} {r['player']}: failed: {r['error']}")
        elif r.get("errors"):
            ctx.out(f"  {r['mode']} {r['player']}: player errors: {r['errors'][:3]}")
    for mode, s in server.items():
        pl = s["pipeline_latency_ms"] or {}
        ctx.out(f"  server side, {mode}: page change → fragment available to viewers: p50 {fmt(s['p50_ms'], 0)} ms,"
                f" p95 {fmt(s['p95_ms'], 0)} ms (pipeline_latency_ms p50 {fmt(pl.get('p50'), 0)} / p95 {fmt(pl.get('p95'), 0)}"
                f" + {s['capture_wait_ms']:g} ms, half a frame interval of capture wait)")
    ctx.out("  machine CPU %: every core's busy time during the run, as % of one core (the player browser decodes in"
            " software on this machine too).")
