"""Section 1, CPU per stream: pagecast's whole process tree next to the reference pipeline on the
same page, minutes apart in one run, because only the ratio survives a noisy machine."""

from __future__ import annotations

import os
from typing import Any

import trio

from .context import PAGES, WARMUP, Context
from .drive import Unavailable
from .measure import fmt, measure, ratio, table
from .drive import open_reference


async def pagecast_window(ctx: Context, page: str, mode: str) -> dict[str, Any]:
    pc = ctx.pagecast
    session = await pc.start(page, mode)
    sid = session["id"]
    try:
        await trio.sleep(WARMUP)
        before = await pc.status(sid)
        window = await measure(pc.roots, ctx.seconds)
        after = await pc.status(sid)
    finally:
        await pc.stop(sid)
    frames = {k: after["frames"][k] - before["frames"][k] for k in ("captured", "encoded", "repeated", "dropped")}
    return {
        **window.to_dict(),
        "fps_captured": round(frames["captured"] / window.seconds, 2),
        "fps_encoded": round(frames["encoded"] / window.seconds, 2),
        "frames": frames,
        "startup_seconds": session.get("startup_seconds") or after.get("startup_seconds"),
        "pipeline_latency_ms": after.get("pipeline_latency_ms"),
    }


async def reference_window(ctx: Context, page: str, *, before_load: str | None = None) -> dict[str, Any]:
    async with open_reference(page, ctx.workdir, before_load=before_load) as ref:
        await trio.sleep(WARMUP)
        f0 = ref.frames()
        window = await measure(lambda: ref.roots, ctx.seconds)
        f1 = ref.frames()
        return {**window.to_dict(), "fps_encoded": round((f1 - f0) / window.seconds, 2), "ffmpeg_speed": ref.progress.get("speed")}


async def run(ctx: Context) -> None:
    cases = [("A", "reference"), ("A", "hls"), ("A", "fmp4"), ("B", "reference"), ("B", "hls")]
    results: dict[str, dict[str, Any]] = {}
    for page_key, pipeline in cases:
        name = f"{page_key}/{pipeline}"
        page = ctx.page(PAGES[page_key][0])
        ctx.progress(f"cpu: {pipeline} on page {page_key} ({WARMUP:g} s warm-up + {ctx.seconds:g} s)")
        try:
            if pipeline == "reference":
                results[name] = await reference_window(ctx, page)
            else:
                results[name] = await pagecast_window(ctx, page, pipeline)
        except Unavailable as exc:
            results[name] = {"unavailable": str(exc)}
    for name, r in results.items():
        if "cpu_pct" in r and not name.endswith("reference"):
            r["ratio"] = ratio(r["cpu_pct"], results.get(name.split("/")[0] + "/reference", {}).get("cpu_pct"))
    ctx.results["cpu"] = results

    labels = {
        "reference": "reference: Xvfb + Chromium + x11grab/x264 medium",
        "hls": "pagecast hls 1080p30",
        "fmp4": "pagecast fmp4 1080p30",
    }
    rows = []
    for page_key, pipeline in cases:
        r = results[f"{page_key}/{pipeline}"]
        if "unavailable" in r:
            rows.append([PAGES[page_key][1], labels[pipeline], "n/a", "", "", "", "", ""])
            continue
        rows.append([
            PAGES[page_key][1], labels[pipeline], fmt(r["cpu_pct"]), fmt(r.get("ratio", 1.0 if pipeline == "reference" else None), 3),
            fmt(r.get("fps_captured")), fmt(r.get("fps_encoded")), fmt(r["pss_mb"], 0), fmt(r["other_pct"]),
        ])
    ctx.out(f"\n== 1. CPU per stream: % of one core, user+system of the whole process tree; "
            f"{WARMUP:g} s warm-up, {ctx.seconds:g} s window")
    ctx.out(table(["page", "pipeline", "CPU %", "ratio", "fps captured", "fps out", "PSS MB", "rest of machine %"], rows))
    for name, r in results.items():
        if "unavailable" in r:
            ctx.out(f"  {name}: not measured: {r['unavailable']}")
    for page_key in PAGES:
        ref = results.get(f"{page_key}/reference", {})
        if ref.get("fps_encoded") is not None and ref["fps_encoded"] < 28:
            ref["capped"] = True
            ctx.out(f"  note: the reference on page {page_key} wrote only {ref['fps_encoded']:.1f} of 30 frames/s: it ran out of CPU"
                    f" (machine {ref['machine_pct']:.0f} % busy of {100 * (os.cpu_count() or 1)} %), so its CPU figure is capped by"
                    f" the machine and the ratios on page {page_key} are too high (pessimistic for pagecast).")
    ctx.out("  by process (% of one core):")
    for page_key, pipeline in cases:
        r = results[f"{page_key}/{pipeline}"]
        if "by_component" in r:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["by_component"].items() if v >= 0.05)
            ctx.out(f"    {page_key} {labels[pipeline].split(':')[0]}: {parts}")
    ctx.out("  ratio = CPU / reference CPU on the same page, this run. fps captured: frames Chromium drew and pagecast"
            " captured (only changed ones); fps out: frames the encoder wrote (reference: x11grab, always 30).")
