"""Section 5, one Chromium per session vs one shared Chromium with a browser context per stream:
the renderer's tick schedule without the encoder, to see whether sharing a browser would pay."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from .context import FPS, PAGES, WARMUP, Context
from .drive import Unavailable
from .measure import fmt, measure, ratio, table
from .drive import owned


async def _shell_variant(ctx: Context, browsers: int, targets_per_browser: int, contexts: bool) -> dict[str, Any]:
    from ..core.settings import Settings
    from ..lowlevel.cdp import open_cdp
    from ..core.page import PageSpec
    from ..session.chromium import chromium_argv, chromium_binary

    settings = Settings.from_env(os.environ)
    if not shutil.which(chromium_binary(settings)):
        raise Unavailable(f"{chromium_binary(settings)} is not installed (chromium-headless-shell)")
    url = ctx.page(PAGES["A"][0])
    counters: list[dict[str, int]] = []
    async with contextlib.AsyncExitStack() as stack:
        roots: list[int] = []
        cdps = []
        for b in range(browsers):
            profile = Path(tempfile.mkdtemp(prefix="shell-", dir=ctx.workdir))
            found: list[str] = []

            def on_line(line: str, found: list[str] = found) -> None:
                if "DevTools listening on " in line and not found:
                    found.append(line.split("DevTools listening on ", 1)[1].strip())

            child, tail = await stack.enter_async_context(owned(
                chromium_argv(settings, PageSpec(url=url, width=1920, height=1080, fps=FPS), profile),
                f"shell-{b}", on_stderr=on_line, env={**os.environ, "TMPDIR": str(profile)},
            ))
            with trio.move_on_after(20):
                while not found and child.poll() is None:
                    await trio.sleep(0.05)
            if not found:
                raise Unavailable(f"{chromium_binary(settings)} did not start: {tail.text()[-500:]}")
            roots.append(child.pid)
            cdps.append(await stack.enter_async_context(open_cdp(found[0])))
        nursery = await stack.enter_async_context(trio.open_nursery())
        clock_offset = trio.current_time() - time.monotonic()
        for cdp in cdps:
            # Begin-frames to two targets of one browser must never overlap: its GPU process
            # dies ("Got overlapping IssueExternalBeginFrame", Chromium 156). One lock per browser.
            lock = trio.Lock()
            mine = []
            for _ in range(targets_per_browser):
                params: dict[str, Any] = {"url": "about:blank", "width": 1920, "height": 1080, "enableBeginFrameControl": True}
                if contexts:
                    params["browserContextId"] = (await cdp.execute("Target.createBrowserContext", {}))["browserContextId"]
                target = await cdp.execute("Target.createTarget", params)
                attached = await cdp.execute("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
                mine.append(target["targetId"])
                session = cdp.session(attached["sessionId"])
                await session.execute("Page.enable")
                stats = {"ticks": 0, "damaged": 0, "shots": 0}
                counters.append(stats)
                nursery.start_soon(_drive_target, session, lock, stats, clock_offset)
                nursery.start_soon(functools.partial(session.execute, "Page.navigate", {"url": url}, timeout=None))
            for info in (await cdp.execute("Target.getTargets")).get("targetInfos", []):
                if info.get("type") == "page" and info.get("targetId") not in mine:
                    with contextlib.suppress(Exception):
                        await cdp.execute("Target.closeTarget", {"targetId": info["targetId"]})
        await trio.sleep(WARMUP)
        before = [dict(c) for c in counters]
        window = await measure(lambda: roots, ctx.seconds)
        after = [dict(c) for c in counters]
        nursery.cancel_scope.cancel()
    per = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before)]
    return {
        **window.to_dict(),
        "targets": len(per),
        "ticks_per_s": round(sum(p["ticks"] for p in per) / len(per) / window.seconds, 2),
        "captured_per_s": round(sum(p["shots"] for p in per) / len(per) / window.seconds, 2),
    }


async def run(ctx: Context) -> None:
    from ..core.schedule import IDLE_AFTER, IDLE_STEP

    results: dict[str, Any] = {}
    for key, browsers, per, contexts in (("separate", 4, 1, False), ("shared", 1, 4, True)):
        label = "4 × chromium-headless-shell" if key == "separate" else "1 shell, 4 browser contexts"
        ctx.progress(f"contexts: {label}, page A at 1080p, begin-frames at {FPS}/s")
        try:
            results[key] = await _shell_variant(ctx, browsers, per, contexts)
        except Unavailable as exc:
            results[key] = {"unavailable": str(exc)}
    ctx.results["contexts"] = results
    ctx.out(f"\n== 5. Four streams of page A without the encoder: one Chromium each vs one shared Chromium with a browser"
            f" context per stream; begin-frames as render.py does ({FPS}/s, 1/{IDLE_STEP} of that after {IDLE_AFTER:g} s"
            f" without a change), JPEG only on damage")
    rows = []
    for key, label in (("separate", "(a) 4 × chromium-headless-shell"), ("shared", "(b) 1 shell, 4 browser contexts")):
        r = results[key]
        if "unavailable" in r:
            rows.append([label, "n/a", "", "", "", "", ""])
            continue
        rows.append([label, fmt(r["cpu_pct"]), fmt(r["pss_mb"], 0), fmt(r["rss_mb"], 0), str(r["processes"]),
                     fmt(r["ticks_per_s"]), fmt(r["captured_per_s"])])
    ctx.out(table(["variant", "CPU %", "PSS MB", "RSS MB", "procs", "ticks/s per stream", "captured/s per stream"], rows))
    for key, r in results.items():
        if "unavailable" in r:
            ctx.out(f"  {key}: not measured: {r['unavailable']}")
    sep, sh = results.get("separate", {}), results.get("shared", {})
    if "cpu_pct" in sep and "cpu_pct" in sh:
        ctx.out(f"  shared/separate: CPU {fmt(ratio(sh['cpu_pct'], sep['cpu_pct']), 2)}, PSS {fmt(ratio(sh['pss_mb'], sep['pss_mb']), 2)}."
                " A shared browser must serialize begin-frames of all its targets (overlapping ones crash its GPU"
                " process), so one busy page delays every other stream's frames.")


async def _drive_target(session: Any, lock: trio.Lock, stats: dict[str, int], clock_offset: float) -> None:
    """Tick one begin-frame-controlled target on the renderer's own schedule (core.schedule:
    a steady 30/s, 1/IDLE_STEP of it once the page has been quiet), a screenshot only after a
    frame with damage."""
    from ..core.schedule import frame_time_ms, next_slot, step_after

    interval = 1.0 / FPS
    deadline = trio.current_time()
    quiet_since = deadline
    step = 1
    while True:
        deadline = next_slot(deadline, trio.current_time(), interval, step)
        await trio.sleep_until(deadline)
        frame_time = frame_time_ms(deadline, clock_offset)
        async with lock:
            result = await session.execute("HeadlessExperimental.beginFrame", {"frameTimeTicks": frame_time, "interval": interval * 1000})
            stats["ticks"] += 1
            damaged = bool(result.get("hasDamage"))
            if damaged:
                stats["damaged"] += 1
                shot = await session.execute(
                    "HeadlessExperimental.beginFrame",
                    {"frameTimeTicks": frame_time, "interval": interval * 1000, "noDisplayUpdates": True,
                     "screenshot": {"format": "jpeg", "quality": 90}},
                )
                if shot.get("screenshotData"):
                    stats["shots"] += 1
        step, quiet_since = step_after(damaged, quiet_since, trio.current_time())
