"""Section scale: what a small box carries. First 1, 2 and 4 Home Assistant dashboard renders at once
(1080p hls, kiosk view), each with a player (hls.js in a headless browser) watching it: CPU and
memory of pagecast's tree, frames captured, and the players' stalls. Then the ramp: distinct
renders of the dashboard (``share: false``, themes alternating), each cast to a virtual TV of its
own, added ``RAMP_STEP`` at a time until a TV stalls or this run's processes take more than
``BUSY_LIMIT`` of the machine; at the largest load that passed, each render gets two more TVs
(three screens a render) to count the TVs served."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import trio

from .context import WARMUP, Context, describe
from .fanout import cast_flags, open_tvs, tv_stalls, wait_playing
from .ha_dashboard import ha_body, home_assistant
from .measure import fmt, machine_busy, measure, table
from .drive import Pagecast, open_pagecast

#: pagecast's target: 4 dashboards with no stall over a minute.
LONG_WINDOW = 60.0
OPTIONS = {"kiosk": True, "share": False}  # a render of its own each, though the page is the same
#: The ramp: renders added this many at a time, up to MAX_RENDERS; stopped when this run's
#: processes (pagecast, Home Assistant, the virtual TVs and their players, the bench) take more
#: than BUSY_LIMIT of the machine, or a TV stalls.
RAMP_STEP = 2
RAMP_START = 2
MAX_RENDERS = 16
BUSY_LIMIT = 0.85
SCREENS_PER_RENDER = 3
RAMP_TVS = tuple(f"127.0.2.{n}" for n in range(1, MAX_RENDERS * SCREENS_PER_RENDER + 1))
THEMES = ({}, {"theme": "dark"})


async def run(ctx: Context) -> None:
    ha = home_assistant(ctx)
    async with open_tvs(RAMP_TVS, "bench scale TV") as tvs:
        ctx.progress("scale: starting pagecast serve")
        async with open_pagecast(ctx.workdir, [*cast_flags(RAMP_TVS), "--max-sessions", str(MAX_RENDERS + 1)]) as pc:
            ctx.pagecast = pc
            await with_players(ctx, pc)
            await ramp(ctx, pc, ha, tvs)


async def with_players(ctx: Context, pc: Pagecast) -> None:
    from ..lowlevel.browser import open_player_browser

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
    ctx.results.setdefault("scale", {}).update(results)
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



async def _window(ctx: Context, pc: Pagecast, sessions: list[str], tvs: list[Any]) -> dict[str, Any]:
    """pagecast's tree and this run's whole tree over one window, every TV's stalls in it."""
    await trio.sleep(WARMUP + 3)
    before = [await pc.status(s) for s in sessions]
    stalls0 = [tv_stalls(tv) for tv in tvs]
    windows: dict[str, Any] = {}

    async def take(key: str, roots) -> None:
        windows[key] = await measure(roots, ctx.seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "pagecast", pc.roots)
        nursery.start_soon(take, "run", lambda: [os.getpid()])
    after = [await pc.status(s) for s in sessions]
    ours, run = windows["pagecast"], windows["run"]
    captured = sum(a["frames"]["captured"] - b["frames"]["captured"] for a, b in zip(after, before))
    cores = os.cpu_count() or 1
    return {
        **ours.to_dict(), "renders": len(sessions), "tvs": len(tvs),
        "run_pct": round(run.cpu_pct, 1), "run_share": round(run.cpu_pct / (100 * cores), 3),
        "fps_captured_per_render": round(captured / len(sessions) / ours.seconds, 2),
        "stalls": sum(tv_stalls(tv) - s for tv, s in zip(tvs, stalls0)),
        "playing": sum(tv.player_state == "PLAYING" for tv in tvs),
    }


def passed(r: dict[str, Any]) -> bool:
    return "error" not in r and r["stalls"] == 0 and r["playing"] == r["tvs"] and r["run_share"] <= BUSY_LIMIT


async def ramp(ctx: Context, pc: Pagecast, ha: Any, tvs: list[Any]) -> None:
    sessions: list[str] = []
    shown: list[Any] = []
    steps: list[dict[str, Any]] = []
    best = 0
    try:
        n = RAMP_START
        while n <= MAX_RENDERS:
            ctx.progress(f"scale: ramp, {n} distinct HA dashboard renders, one virtual TV each ({WARMUP + 3:g} s warm-up + {ctx.seconds:g} s)")
            started = len(sessions)
            sessions.extend([""] * (n - started))
            try:
                async with trio.open_nursery() as nursery:
                    for i in range(started, n):
                        nursery.start_soon(_cast_one, pc, ha, tvs[i], i, sessions)
            except Exception as exc:  # noqa: BLE001 - a load that cannot start is where the ramp ends
                steps.append({"renders": n, "tvs": n, "error": describe(exc)})
                del sessions[started:]
                break
            shown = list(tvs[:n])
            step = await _window(ctx, pc, sessions, shown)
            steps.append(step)
            if not passed(step):
                break
            best = n
            n += RAMP_STEP
        wide: dict[str, Any] | None = None
        if best:
            for sid in sessions[best:]:
                if sid:
                    await pc.stop(sid)
            del sessions[best:]
            ctx.progress(f"scale: {best} renders, {SCREENS_PER_RENDER} TVs each ({best * SCREENS_PER_RENDER} TVs)")
            extra = SCREENS_PER_RENDER - 1
            shown = list(tvs[:best])
            for i, sid in enumerate(sessions):
                more = list(tvs[best + i * extra: best + (i + 1) * extra])
                r = await pc.client.post(f"/sessions/{sid}/screens", json={"device": [tv.host for tv in more]})
                if r.status_code >= 400:
                    raise RuntimeError(f"pagecast could not add screens to {sid}: HTTP {r.status_code}: {r.text[:300]}")
                shown += more
            await wait_playing(shown)
            wide = await _window(ctx, pc, sessions, shown)
    finally:
        await pc.stop()
    ctx.results.setdefault("scale", {})["ramp"] = {"steps": steps, "best": best, "wide": wide, "busy_limit": BUSY_LIMIT}
    cores = os.cpu_count() or 1
    ctx.out(f"\n== Scaling, ramp: distinct renders of the HA dashboard (1080p hls, kiosk, share: false), each cast to a virtual TV of its own,"
            f" {RAMP_STEP} added a step; {WARMUP + 3:g} s warm-up, {ctx.seconds:g} s window")
    rows = []
    for r in [*steps, *([wide] if wide else [])]:
        if "error" in r:
            rows.append([str(r["renders"]), str(r["tvs"]), *["—"] * 9, "no"])
            continue
        rows.append([str(r["renders"]), str(r["tvs"]), fmt(r["cpu_pct"]), fmt(r["cpu_pct"] / r["renders"]), fmt(r["run_pct"]),
                     f"{100 * r['run_share']:.0f} %", fmt(r["machine_pct"], 0), fmt(r["pss_mb"], 0), fmt(r["fps_captured_per_render"]),
                     f"{r['playing']} of {r['tvs']}", str(r["stalls"]), "yes" if passed(r) else "no"])
    ctx.out(table(["renders", "TVs", "pagecast CPU %", "per render", "this run CPU %", "of the machine", "machine CPU %", "PSS MB",
                   "fps captured/render", "TVs playing", "stalls", "passed"], rows))
    for r in steps:
        if "error" in r:
            ctx.out(f"  {r['renders']} renders could not start: {r['error'][:300]}")
    ctx.out(f"  largest load that passed: {best} distinct renders on one TV each" + (
        f"; at that load, {SCREENS_PER_RENDER} screens a render: {wide['tvs']} TVs, {wide['stalls']} stalls,"
        f" this run {100 * wide['run_share']:.0f} % of the machine" if wide else "")
        + f". passed: 0 stalls, every TV playing, this run's processes ≤ {100 * BUSY_LIMIT:.0f} % of the machine ({100 * cores} % of one core)."
        " this run CPU %: pagecast, Home Assistant, the virtual TVs and their FFmpeg players (which a real TV does itself) and the bench;"
        " machine CPU %: every core's busy time, other jobs on the machine included.")


async def _cast_one(pc: Pagecast, ha: Any, tv: Any, i: int, sessions: list[str]) -> None:
    """Render ``i`` of the ramp (its theme alternating), cast to ``tv``; its id goes to ``sessions[i]``."""
    body = ha_body(ha, {**OPTIONS, **THEMES[i % len(THEMES)]})
    r = await pc.client.post("/start", json={"url": ha.dashboard_url, "quality": "1080p", **body, "device": [tv.host]})
    if r.status_code >= 400:
        raise RuntimeError(f"pagecast could not cast the dashboard to {tv.host}: HTTP {r.status_code}: {r.text[:300]}")
    sessions[i] = r.json()["id"]
    await wait_playing([tv])


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    ramp = results.get("scale", {}).get("ramp")
    if not ramp:
        return []
    wide = ramp.get("wide")
    tvs = f"; {wide['tvs']} TVs at 3 screens a render, {wide['stalls']} stalls" if wide else ""
    return [("Distinct HA dashboards on 2 cores, 0 stalls, ≤ 85 % busy", f"{ramp['best']}{tvs}", "≥ 10", ramp["best"] >= 10)]
