"""``pagecast bench``: the figures pagecast's targets are about, each next to a reference measured
in the same run.

Machines are noisy (the reference itself has varied by 10 % between runs on one machine), so
every CPU figure is also a ratio to a reference pipeline (Xvfb + Chromium kiosk + ``ffmpeg -f
x11grab``) run on the same page minutes earlier, or to another case of the same section, and
the CPU that the rest of the machine used meanwhile is printed next to it. Sections
(``--only``): cpu, idle, ha, fanout, scale, startup, latency, contexts, cast, encoders; ha,
fanout and scale run a real Home Assistant
(homeassistant.py: installed once into a cache outside the repository). docs/benchmark.md says what each figure means and how it is taken.

Everything the benchmark starts (``pagecast serve``, the reference's Xvfb/Chromium/FFmpeg,
headless shells, the player browser) is an owned child (:func:`pagecast.lowlevel.proc.open_child`),
stopped when its block ends, on errors and on Ctrl-C too. The bench pages are served by a
small local HTTP server from ``static/``, so nothing is added to the service's API.

This module holds the run order and the summary; each section is a module of its own
(cpu.py … encoders.py) taking the shared :class:`~.context.Context`; measure.py measures and
prints, drive.py runs what is measured (and pagecast chaos drives a pagecast with it too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from . import browser_sharing, cast, cpu, encoders, fanout, ha_dashboard, idle, latency, scale, startup
from .context import TARGETS, WARMUP, Context, describe
from .homeassistant import open_home_assistant
from .machine import machine_info
from .measure import fmt, ms_to_s, table
from .drive import open_pagecast, serve_pages

SECTIONS = {
    "cpu": cpu.run, "idle": idle.run, "ha": ha_dashboard.run, "fanout": fanout.run, "scale": scale.run, "startup": startup.run,
    "latency": latency.run, "contexts": browser_sharing.run, "cast": cast.run, "encoders": encoders.run,
}
#: Sections that need the run's Home Assistant (started once, for the first of them).
NEEDS_HOME_ASSISTANT = ("ha", "fanout", "scale")
#: Sections that start their own pagecast serve (with flags of their own), or none.
OWN_PAGECAST = ("contexts", "cast", "fanout", "scale")


def _summary_line(label: str, value: str, target: str, ok: bool | None) -> list[str]:
    mark = "—" if ok is None else ("yes" if ok else "NO")
    return [label, value, target, mark]


def summary(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    cpu = results.get("cpu", {})
    a, b = cpu.get("A/hls", {}), cpu.get("B/hls", {})
    if a:
        rows.append(_summary_line("CPU, page A, hls: ratio to reference", fmt(a.get("ratio"), 3) + f" ({fmt(a.get('cpu_pct'))} %)",
                                  f"≤ {TARGETS['cpu_a']:g}", None if a.get("ratio") is None else a["ratio"] <= TARGETS["cpu_a"]))
    if cpu.get("A/fmp4"):
        f = cpu["A/fmp4"]
        rows.append(_summary_line("CPU, page A, fmp4: ratio to reference", fmt(f.get("ratio"), 3) + f" ({fmt(f.get('cpu_pct'))} %)", "—", None))
    if b:
        ok = None if b.get("ratio") is None else (b["ratio"] <= TARGETS["cpu_b"] and b["fps_captured"] >= TARGETS["fps_b"])
        capped = " (reference CPU-capped)" if cpu.get("B/reference", {}).get("capped") else ""
        rows.append(_summary_line("CPU, page B, hls: ratio at fps delivered", f"{fmt(b.get('ratio'), 3)} at {fmt(b.get('fps_captured'))} fps{capped}",
                                  f"≤ {TARGETS['cpu_b']:g} at ≥ {TARGETS['fps_b']:g} fps", ok))
    for mode, label in (("fmp4", "Startup, fmp4, Chromium native (median)"), ("hls", "Startup, hls, hls.js (median)")):
        s = results.get("startup", {}).get(mode)
        if s:
            target = TARGETS[f"startup_{mode}"]
            rows.append(_summary_line(label, fmt(s["median"], 2, " s"), f"≤ {target:g} s", None if s["median"] is None else s["median"] <= target))
    lat = results.get("latency", {})
    hls_runs = [r for r in lat.get("runs", []) if r["mode"] == "hls" and r.get("median_ms") is not None]
    if hls_runs:
        clean = [r for r in hls_runs if r["stalls"] == 0] or hls_runs
        best = min(clean, key=lambda r: r["median_ms"])
        name = {"hlsjs": "hls.js", "shaka": "Shaka"}[best["player"]] + (f" delay {best['delay']:g}" if best["delay"] is not None else " default")
        rows.append(_summary_line(f"Glass-to-glass, hls, best ({name})", f"{fmt(ms_to_s(best['median_ms']), 2)} s, {best['stalls']} stalls",
                                  f"≤ {TARGETS['latency_hls']:g} s, 0 stalls", best["median_ms"] / 1000 <= TARGETS["latency_hls"] and best["stalls"] == 0))
    for r in lat.get("runs", []):
        if r["mode"] == "fmp4" and r.get("median_ms") is not None:
            rows.append(_summary_line("Glass-to-glass, fmp4, Chromium native", f"{fmt(ms_to_s(r['median_ms']), 2)} s, {r['stalls']} stalls",
                                      f"≤ {TARGETS['latency_fmp4']:g} s, 0 stalls", r["median_ms"] / 1000 <= TARGETS["latency_fmp4"] and r["stalls"] == 0))
    srv = lat.get("server", {}).get("fmp4")
    if srv and srv.get("p50_ms") is not None:
        rows.append(_summary_line("Page change → fragment leaves server (fmp4)", f"p50 {srv['p50_ms']:.0f} ms, p95 {srv['p95_ms']:.0f} ms",
                                  f"≤ {TARGETS['server_ms']:g} ms", srv["p50_ms"] <= TARGETS["server_ms"]))
    for module in (idle, ha_dashboard, fanout, scale):
        for label, value, target, ok in module.summary_rows(results):
            rows.append(_summary_line(label, value, target, ok))
    scaled = results.get("scale", {})
    if "4" in scaled:
        r = scaled["4"]
        rows.append(_summary_line("4 HA dashboards at once: per stream", f"{fmt(r['cpu_pct'] / 4)} % CPU, {fmt((r['pss_mb'] or 0) / 4, 0)} MB PSS", "—", None))
    c = results.get("cast", {})
    for player, runs in c.get("playing", {}).items():
        ok = [r["playing"] for r in runs if "playing" in r]
        if ok:
            rows.append(_summary_line(f"Cast: /start → PLAYING on the virtual TV ({player})", fmt(statistics.median(ok), 2, " s"), "a few seconds", None))
    if c.get("remote_stop"):
        gone = statistics.median([r["children_gone"] for r in c["remote_stop"]])
        noticed = statistics.median([r["noticed"] for r in c["remote_stop"]])
        rows.append(_summary_line("Cast: remote stop → noticed / last child gone", f"{fmt(noticed, 2)} s / {fmt(gone, 2)} s", "≤ 2 s / +1 s", noticed <= 2 and gone - noticed <= 1))
    if c.get("drop"):
        d = c["drop"]
        rows.append(_summary_line("Cast: silent drop noticed (vs heartbeat alone)", f"{fmt(d['liveness'], 2)} s vs {fmt(d['heartbeat'], 2)} s", "—", None))
    enc = results.get("encoders", {})
    for name, e in enc.get("backends", {}).items():
        if e.get("ran") and "ssim" in e:
            rows.append(_summary_line(f"Encoder {name}: CPU ratio / SSIM at its bitrate", f"{fmt(e.get('ratio'), 3)} / {e['ssim']:.4f} at {e['kbps']} kb/s", "—", None))
        elif not e.get("ran"):
            rows.append(_summary_line(f"Encoder {name}", "cannot run here", "—", None))
    ctx = results.get("contexts", {})
    if "cpu_pct" in ctx.get("separate", {}) and "cpu_pct" in ctx.get("shared", {}):
        s, t = ctx["separate"], ctx["shared"]
        rows.append(_summary_line("4 streams: separate vs shared Chromium", f"CPU {fmt(s['cpu_pct'])} vs {fmt(t['cpu_pct'])} %,"
                                  f" PSS {fmt(s['pss_mb'], 0)} vs {fmt(t['pss_mb'], 0)} MB", "—", None))
    return rows


async def _run(ctx: Context) -> None:
    ctx.results["machine"] = machine_info()
    ctx.results["options"] = {"seconds": ctx.seconds, "warmup": WARMUP, "sections": ctx.sections}
    m = ctx.results["machine"]
    ctx.out(f"pagecast bench — {m['date']}")
    ctx.out(f"  machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, load average {m['loadavg']}")
    ctx.out(f"  {m['pagecast']} · {m['chromium']} · {m['ffmpeg']} · Python {m['python']} · Linux {m['kernel']}")
    errors: dict[str, str] = {}
    ctx.results["errors"] = errors
    warnings: list[str] = []
    failures: list[str] = []
    async with ctx.stack:
        await _sections(ctx, errors, warnings, failures)
    ctx.results["pagecast_warnings"] = warnings
    ctx.results["pagecast_start_failures"] = failures
    rows = summary(ctx.results)
    ctx.results["summary"] = [dict(zip(("figure", "measured", "target", "met"), r)) for r in rows]
    ctx.out("\n== Summary (pagecast's targets; ratios against the reference measured in this run)")
    if rows:
        ctx.out(table(["figure", "measured", "target", "met"], rows))
    failures = ctx.results.get("pagecast_start_failures") or []
    if failures:
        ctx.out(f"  pagecast sessions that failed while starting (each was retried): {len(failures)}; first: {failures[0][:300]}")
    warnings = ctx.results.get("pagecast_warnings") or []
    if warnings:
        ctx.out(f"  pagecast logged {len(warnings)} warning(s)/error(s) during the run; first: {warnings[0][:200]}")
    if errors:
        ctx.out(f"  sections that failed: {', '.join(errors)}")


async def _sections(ctx: Context, errors: dict[str, str], warnings: list[str], failures: list[str]) -> None:
    names = [s for s in SECTIONS if s in ctx.sections]
    last_ha = max((i for i, name in enumerate(names) if name in NEEDS_HOME_ASSISTANT), default=-1)
    for index, name in enumerate(names):
        try:
            if name in NEEDS_HOME_ASSISTANT and ctx.home_assistant is None:
                # Before the section's pagecast: what lives longer is entered first.
                ctx.home_assistant = await ctx.stack.enter_async_context(open_home_assistant(ctx.workdir, ctx.progress))
            async with contextlib.AsyncExitStack() as stack:
                if name not in OWN_PAGECAST:
                    # A pagecast per section: a failure (or an outside kill) stays in its section.
                    ctx.progress(f"{name}: starting pagecast serve")
                    ctx.pagecast = await stack.enter_async_context(open_pagecast(ctx.workdir))
                try:
                    await SECTIONS[name](ctx)
                finally:
                    if ctx.pagecast is not None:
                        warnings += ctx.pagecast.warnings
                        failures += ctx.pagecast.start_failures
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            errors[name] = describe(exc)
            pc = ctx.pagecast
            if pc is not None and pc.exited_early:
                last = [line for line in pc.tail.lines if "SIGTERM" in line or "ERROR" in line][-2:]
                errors[name] += f" (pagecast serve exited on its own: {pc.child!r}; {' | '.join(last) or 'no log'})"
            ctx.out(f"\n== {name}: failed: {errors[name]}")
        finally:
            ctx.pagecast = None
        if ctx.home_assistant is not None and index >= last_ha:
            # The sections after the last that needs it measure a machine without it.
            await ctx.stack.aclose()
            ctx.home_assistant = None


def parse_sections(only: str) -> list[str]:
    wanted = [s.strip() for s in (only or "").split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
    return wanted or list(SECTIONS)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``pagecast bench`` (see cli.py): run the sections, print, optionally write JSON."""
    try:
        sections = parse_sections(getattr(args, "only", ""))
    except ValueError as exc:
        print(f"pagecast bench: {exc}", file=sys.stderr)
        return 2
    seconds = float(getattr(args, "seconds", 20.0))
    if seconds < 3:
        print("pagecast bench: --seconds must be at least 3", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="pagecast-bench-"))
    ctx: Context | None = None
    code = 0
    try:
        with serve_pages() as pages_url:
            ctx = Context(seconds, sections, workdir, pages_url)
            trio.run(_run, ctx)
    except KeyboardInterrupt:
        print("\npagecast bench: interrupted; everything it started has been stopped.", file=sys.stderr)
        code = 130
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        print("\npagecast bench: interrupted; everything it started has been stopped.", file=sys.stderr)
        code = 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        json_out = getattr(args, "json_out", "")
        if json_out and ctx is not None:
            Path(json_out).write_text(json.dumps(ctx.results, indent=1, default=str) + "\n")
            print(f"pagecast bench: figures written to {json_out}", file=sys.stderr)
    return code
