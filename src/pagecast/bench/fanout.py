"""Section fanout: one render shown on several TVs. The bench's Home Assistant dashboard cast to one
virtual TV, then by one /start to three (``device`` as a list: one Chromium and one FFmpeg, a
screen per TV), alternately, ``ROUNDS`` times each: pagecast's whole tree, and every TV's stalls."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import AsyncIterator, Sequence
from typing import Any

import trio

from .context import WARMUP, Context
from .ha_dashboard import ha_body, home_assistant
from .measure import fmt, measure, ratio, table
from .drive import Pagecast, open_pagecast

ROUNDS = 2
TVS = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
#: pagecast's target: three screens of one render cost at most this much more than one.
FANOUT_TARGET = 1.10
PLAYING_TIMEOUT = 90.0
OPTIONS = {"kiosk": True}


def cast_flags(hosts: Sequence[str]) -> list[str]:
    """``pagecast serve`` flags for virtual TVs on loopback, found by address (no mDNS)."""
    return ["--cast-hosts", ",".join(hosts), "--mdns", "false"]


@contextlib.asynccontextmanager
async def open_tvs(hosts: Sequence[str], label: str) -> AsyncIterator[list[Any]]:
    """A virtual TV (FFmpeg player) on each of ``hosts``, stopped when the block ends."""
    from ..virtual_tv import open_virtual_tv

    async with contextlib.AsyncExitStack() as stack:
        tvs = [await stack.enter_async_context(open_virtual_tv(host=h, name=f"{label} {n + 1}", player="ffmpeg")) for n, h in enumerate(hosts)]
        yield tvs


def tv_stalls(tv: Any) -> int:
    return int((tv.state().get("stats") or {}).get("stalls") or 0)


async def wait_playing(tvs: Sequence[Any], timeout: float = PLAYING_TIMEOUT) -> None:
    with trio.fail_after(timeout):
        while any(tv.player_state != "PLAYING" for tv in tvs):
            await trio.sleep(0.1)


async def cast(pc: Pagecast, url: str, body: dict[str, Any], tvs: Sequence[Any]) -> str:
    """One /start of ``url`` on every TV of ``tvs`` (a list ``device``); returns the session's
    id once each TV plays."""
    r = await pc.client.post("/start", json={"url": url, "quality": "1080p", **body, "device": [tv.host for tv in tvs]})
    if r.status_code >= 400:
        raise RuntimeError(f"pagecast could not cast {url} to {len(tvs)} TV(s): HTTP {r.status_code}: {r.text[:300]}")
    await wait_playing(tvs)
    return r.json()["id"]


async def window(ctx: Context, pc: Pagecast, url: str, body: dict[str, Any], tvs: Sequence[Any]) -> dict[str, Any]:
    sid = await cast(pc, url, body, tvs)
    try:
        await trio.sleep(WARMUP)
        before = await pc.status(sid)
        stalls0 = [tv_stalls(tv) for tv in tvs]
        result = (await measure(pc.roots, ctx.seconds)).to_dict()
        after = await pc.status(sid)
        result["stalls"] = [tv_stalls(tv) - s for tv, s in zip(tvs, stalls0)]
        result["playing"] = sum(tv.player_state == "PLAYING" for tv in tvs)
        result["fps_captured"] = round((after["frames"]["captured"] - before["frames"]["captured"]) / result["seconds"], 2)
        result["screens"] = len(after.get("screens") or [])
    finally:
        await pc.stop(sid)
    return result


async def run(ctx: Context) -> None:
    ha = home_assistant(ctx)
    body = ha_body(ha, OPTIONS)
    results: dict[str, Any] = {"1": [], "3": []}
    async with open_tvs(TVS, "bench fan-out TV") as tvs:
        ctx.progress("fanout: starting pagecast serve")
        async with open_pagecast(ctx.workdir, cast_flags(TVS)) as pc:
            ctx.pagecast = pc
            for n in range(ROUNDS):
                for screens in (1, 3):
                    ctx.progress(f"fanout: the HA dashboard on {screens} TV(s), round {n + 1}/{ROUNDS} ({WARMUP:g} s warm-up + {ctx.seconds:g} s)")
                    results[str(screens)].append(await window(ctx, pc, ha.dashboard_url, body, tvs[:screens]))
    for key in ("1", "3"):
        results[f"{key}_mean"] = statistics.fmean(r["cpu_pct"] for r in results[key])
    results["ratio"] = ratio(results["3_mean"], results["1_mean"])
    ctx.results["fanout"] = results

    ctx.out(f"\n== Fan-out: the HA dashboard (1080p, kiosk) cast to 1 virtual TV, then to 3 by one /start (one render, 3 screens);"
            f" {WARMUP:g} s warm-up, {ctx.seconds:g} s window, {ROUNDS} rounds each, alternately")
    rows = []
    for n in range(ROUNDS):
        for screens in ("1", "3"):
            r = results[screens][n]
            rows.append([screens, str(n + 1), fmt(r["cpu_pct"]), fmt(r["by_component"].get("chromium")), fmt(r["by_component"].get("ffmpeg")),
                         fmt(r["by_component"].get("pagecast")), fmt(r["fps_captured"]), f"{r['playing']} of {screens}",
                         ", ".join(str(s) for s in r["stalls"]), fmt(r["other_pct"])])
    ctx.out(table(["TVs", "round", "CPU %", "chromium", "ffmpeg", "service", "fps captured", "playing", "stalls per TV", "rest of machine %"], rows))
    ctx.out(f"  mean CPU: 1 TV {fmt(results['1_mean'])} %, 3 TVs {fmt(results['3_mean'])} %; ratio 3 : 1 = {fmt(results['ratio'], 3)}"
            f" (pagecast's target ≤ {FANOUT_TARGET:.2f}, 0 stalls on every TV). CPU: pagecast's tree; the virtual TVs' players are not in it.")


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    f = results.get("fanout")
    if not f or f.get("ratio") is None:
        return []
    stalls = sum(sum(r["stalls"]) for key in ("1", "3") for r in f[key])
    ok = f["ratio"] <= FANOUT_TARGET and stalls == 0
    return [("Fan-out: HA dashboard on 3 TVs vs 1 (one render)", f"{fmt(f['ratio'], 3)} ({fmt(f['3_mean'])} vs {fmt(f['1_mean'])} %), {stalls} stalls",
             f"≤ {FANOUT_TARGET:.2f}, 0 stalls", ok)]
