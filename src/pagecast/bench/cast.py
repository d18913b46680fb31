"""Section 6, casting to the virtual TV: pagecast → pychromecast → CASTV2/TLS → a virtual TV on
loopback, for how long a cast takes to play, to stop from the remote, and to notice a dead link."""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import trio

from .context import PAGES, Context, describe
from .measure import fmt, process_tree, ratio, table
from .drive import Pagecast, open_pagecast

CAST_REPEATS = 3
CAST_TVS = {"ffmpeg": "127.0.0.2", "shaka": "127.0.0.3"}
CAST_FLAGS = ["--cast-hosts", ",".join(CAST_TVS.values()), "--mdns", "false"]


async def _cast_start(ctx: Context, pc: Pagecast, tv: Any, device: str) -> dict[str, Any]:
    t0 = time.monotonic()
    r = await pc.client.post("/start", json={"url": ctx.page(PAGES["A"][0]), "device": device})
    if r.status_code >= 400:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
    sid = r.json()["id"]
    answered = time.monotonic() - t0
    with trio.fail_after(60):
        while tv.player_state != "PLAYING":
            await trio.sleep(0.02)
    playing = time.monotonic() - t0
    status = await pc.status(sid)
    return {"id": sid, "answered": answered, "playing": playing, "live": status.get("startup_seconds")}


async def _children_gone(pc: Pagecast, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while process_tree([pc.child.pid])[1:]:
            await trio.sleep(0.02)


async def _drop_noticed(ctx: Context, pc: Pagecast, tv: Any, device: str) -> float:
    run = await _cast_start(ctx, pc, tv, device)
    await trio.sleep(2)
    tv.drop_network("silent")
    t0 = time.monotonic()
    try:
        with trio.fail_after(60):
            while (await pc.status(run["id"]))["cast"]["state"] != "reconnecting":
                await trio.sleep(0.05)
        return time.monotonic() - t0
    finally:
        tv.restore_network()
        await pc.stop(run["id"])


async def run(ctx: Context) -> None:
    from ..virtual_tv import open_virtual_tv

    results: dict[str, Any] = {"playing": {}, "remote_stop": [], "drop": {}}
    async with contextlib.AsyncExitStack() as stack:
        tvs = {}
        for player, host in CAST_TVS.items():
            tvs[player] = await stack.enter_async_context(open_virtual_tv(host=host, name=f"bench TV ({player})", player=player))
        ctx.progress("cast: starting pagecast serve")
        ctx.pagecast = pc = await stack.enter_async_context(open_pagecast(ctx.workdir, CAST_FLAGS))
        for player, tv in tvs.items():
            runs = []
            for i in range(CAST_REPEATS):
                ctx.progress(f"cast: /start → PLAYING on the virtual TV ({player} player), run {i + 1}/{CAST_REPEATS}")
                try:
                    run = await _cast_start(ctx, pc, tv, tv.host)
                    runs.append(run)
                    await pc.stop(run["id"])
                    await _children_gone(pc)
                except Exception as exc:  # noqa: BLE001 - a failed run is a figure too
                    runs.append({"error": describe(exc)})
            results["playing"][player] = runs
        tv = tvs["ffmpeg"]
        for i in range(CAST_REPEATS):
            ctx.progress(f"cast: stop on the TV's remote → last child gone, run {i + 1}/{CAST_REPEATS}")
            run = await _cast_start(ctx, pc, tv, tv.host)
            await trio.sleep(2)
            t0 = time.monotonic()
            tv.remote_stop()
            with trio.fail_after(20):
                while (await pc.status(run["id"]))["state"] != "stopped":
                    await trio.sleep(0.02)
            noticed = time.monotonic() - t0
            await _children_gone(pc)
            results["remote_stop"].append({"noticed": noticed, "children_gone": time.monotonic() - t0})
        ctx.progress("cast: silent network drop → noticed (status requests)")
        results["drop"]["liveness"] = await _drop_noticed(ctx, pc, tv, tv.host)
        ctx.progress("cast: silent network drop → noticed (pychromecast's heartbeat alone: the reference)")
        async with open_pagecast(ctx.workdir, [*CAST_FLAGS, "--cast-liveness-interval", "0"]) as bare:
            results["drop"]["heartbeat"] = await _drop_noticed(ctx, bare, tv, tv.host)
    ctx.results["cast"] = results
    ctx.out("\n== 6. Casting: pagecast → pychromecast → CASTV2/TLS → virtual TV on loopback → its player (page A, 1080p hls)")
    rows = []
    for player, runs in results["playing"].items():
        ok = [r for r in runs if "playing" in r]
        each = ", ".join(fmt(r["playing"], 2) if "playing" in r else "failed" for r in runs)
        rows.append([f"/start → PLAYING ({player} player)", fmt(statistics.median([r["playing"] for r in ok]), 2, " s") if ok else "failed", each,
                     fmt(statistics.median([r["live"] for r in ok if r.get("live")]), 2, " s") if ok else "—",
                     fmt(statistics.median([r["answered"] for r in ok]), 2, " s") if ok else "—"])
    ctx.out(table(["figure", "median", "each run (s)", "stream live at", "/start answered"], rows))
    for player, runs in results["playing"].items():
        for r in runs:
            if "error" in r:
                ctx.out(f"  {player}: a run failed: {r['error']}")
    stops = results["remote_stop"]
    ctx.out(f"  remote stop → session stopped: median {fmt(statistics.median([r['noticed'] for r in stops]), 2, ' s')};"
            f" → last child of pagecast gone: median {fmt(statistics.median([r['children_gone'] for r in stops]), 2, ' s')}"
            f" (each: {', '.join(fmt(r['children_gone'], 2) for r in stops)})")
    d = results["drop"]
    ctx.out(f"  silent network drop → noticed: {fmt(d['liveness'], 2, ' s')} with status requests every 1.5 s (3 s timeout);"
            f" {fmt(d['heartbeat'], 2, ' s')} with pychromecast's heartbeat alone; ratio {fmt(ratio(d['liveness'], d['heartbeat']), 2)}")
