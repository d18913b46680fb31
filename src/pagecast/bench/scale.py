"""Section 4, scaling: 0, 1, 2 and 4 concurrent sessions, for what each further stream costs in CPU
and memory once the service itself is paid for."""

from __future__ import annotations

from typing import Any

import trio

from .context import PAGES, WARMUP, Context
from .measure import fmt, measure, table


async def run(ctx: Context) -> None:
    pc = ctx.pagecast
    page = ctx.page(PAGES["A"][0])
    results: dict[str, Any] = {}
    ctx.progress("scale: pagecast with no session")
    idle = await measure(pc.roots, min(ctx.seconds, 5.0))
    results["0"] = {**idle.to_dict(), "sessions": 0}
    sessions: list[str] = []
    try:
        for n in (1, 2, 4):
            ctx.progress(f"scale: {n} hls 1080p session(s) on page A")
            while len(sessions) < n:
                sessions.append((await pc.start(page, "hls"))["id"])
            await trio.sleep(WARMUP)
            before = [await pc.status(s) for s in sessions]
            window = await measure(pc.roots, ctx.seconds)
            after = [await pc.status(s) for s in sessions]
            captured = sum(a["frames"]["captured"] - b["frames"]["captured"] for a, b in zip(after, before))
            results[str(n)] = {**window.to_dict(), "sessions": n, "fps_captured_per_stream": round(captured / n / window.seconds, 2),
                               "live": sum(a["state"] == "live" for a in after)}
    finally:
        await pc.stop()
    ctx.results["scale"] = results
    ctx.out(f"\n== 4. Scaling: n concurrent hls 1080p sessions on page A (one Chromium + one FFmpeg each); {ctx.seconds:g} s window")
    base_pss = results["0"].get("pss_mb") or 0.0
    rows = []
    for key, r in results.items():
        n = r["sessions"]
        rows.append([
            str(n), fmt(r["cpu_pct"]), fmt(r["cpu_pct"] / n) if n else "—", fmt(r["pss_mb"], 0),
            fmt(r["pss_mb"] / n, 0) if n and r["pss_mb"] else "—",
            fmt((r["pss_mb"] - base_pss) / n, 0) if n and r["pss_mb"] else "—",
            fmt(r["rss_mb"], 0), str(r["processes"]), fmt(r.get("fps_captured_per_stream")), fmt(r["other_pct"]),
        ])
    ctx.out(table(["streams", "CPU %", "CPU %/stream", "PSS MB", "PSS/stream", "added PSS/stream", "RSS MB", "procs",
                   "fps captured/stream", "rest of machine %"], rows))
    for key, r in results.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["by_component"].items() if v >= 0.05)
        ctx.out(f"  {key} stream(s), CPU by process: {parts or '—'}")
    exact = all(r.get("pss_exact", True) for r in results.values())
    ctx.out(f"  memory: {'PSS' if exact else 'PSS where readable, else RSS'} summed over pagecast's tree (the service"
            " itself included), median of samples every 2 s; added PSS/stream = (PSS − PSS with no session) / n.")
