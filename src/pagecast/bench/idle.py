"""Section idle: what a dashboard costs when it does not change (page A drawn once) and when it
changes once a second (page A), pagecast's whole tree and each kind of process in it. Each page
is measured ``ROUNDS`` times, alternately, because a figure this small is easily drowned by the
rest of a shared machine."""

from __future__ import annotations

import statistics
from typing import Any

from .context import PAGES, WARMUP, Context
from .cpu import pagecast_window
from .measure import fmt, table
from .drive import STILL_PAGE

ROUNDS = 2
CASES = [("still", STILL_PAGE, "a page that never changes (page A drawn once)"), ("1/s", PAGES["A"][0], "page A: changes once a second")]
#: pagecast's target for a page that does not change, in % of one core for the whole tree.
STILL_TARGET = 2.5
PARTS = ("chromium", "ffmpeg", "pagecast")


def mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of a case's rounds: total, each part, frame rates."""
    def avg(get) -> float | None:
        values = [v for v in (get(r) for r in runs) if v is not None]
        return statistics.fmean(values) if values else None

    return {
        "cpu_pct": avg(lambda r: r.get("cpu_pct")),
        "by_component": {p: avg(lambda r, p=p: r.get("by_component", {}).get(p, 0.0)) for p in PARTS},
        "fps_captured": avg(lambda r: r.get("fps_captured")),
        "fps_encoded": avg(lambda r: r.get("fps_encoded")),
        "other_pct": avg(lambda r: r.get("other_pct")),
    }


async def run(ctx: Context) -> None:
    results: dict[str, Any] = {key: {"runs": []} for key, _, _ in CASES}
    for n in range(ROUNDS):
        for key, page, label in CASES:
            ctx.progress(f"idle: {label}, round {n + 1}/{ROUNDS} ({WARMUP:g} s warm-up + {ctx.seconds:g} s)")
            results[key]["runs"].append(await pagecast_window(ctx, ctx.page(page), "hls"))
    for key, _, _ in CASES:
        results[key]["mean"] = mean_of(results[key]["runs"])
    ctx.results["idle"] = results

    ctx.out(f"\n== Idle: pagecast's tree, 1080p hls, no viewer: % of one core; {WARMUP:g} s warm-up, {ctx.seconds:g} s window, {ROUNDS} rounds each")
    rows = []
    for key, _, label in CASES:
        for n, r in enumerate([*results[key]["runs"], results[key]["mean"]]):
            parts = r.get("by_component", {})
            rows.append([label if n == 0 else "", "mean" if n == ROUNDS else str(n + 1), fmt(r.get("cpu_pct"), 2),
                         *(fmt(parts.get(p), 2) for p in PARTS),
                         fmt(r.get("fps_captured"), 2), fmt(r.get("fps_encoded"), 2), fmt(r.get("other_pct"))])
    ctx.out(table(["page", "round", "CPU %", "chromium", "ffmpeg", "service", "fps captured", "fps out", "rest of machine %"], rows))
    ctx.out(f"  pagecast's target: a page that does not change ≤ {STILL_TARGET:g} % of one core, all processes together; one that"
            " changes once a second no dearer than before. chromium: its browser, GPU and renderer processes; service: pagecast's"
            " own Python; fps out: frames the encoder wrote (captured ones plus its repeats).")


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    idle = results.get("idle", {})
    still = idle.get("still", {}).get("mean", {})
    if still.get("cpu_pct") is None:
        return []
    parts = ", ".join(f"{p} {fmt(still['by_component'].get(p), 1)}" for p in PARTS)
    once = idle.get("1/s", {}).get("mean", {})
    return [
        ("Idle: a page that does not change (all processes)", f"{fmt(still['cpu_pct'], 2)} % ({parts})", f"≤ {STILL_TARGET:g} %",
         still["cpu_pct"] <= STILL_TARGET),
        ("Idle: page A, changing once a second", f"{fmt(once.get('cpu_pct'), 2)} %", "no more than before", None),
    ]
