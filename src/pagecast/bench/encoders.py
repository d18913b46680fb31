"""Section 7, encoder backends: each one that works here on the same captured clip (SSIM) and in
the same 1080p session (CPU), so the startup probe's choice can be checked against figures."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import trio

from .context import FPS, PAGES, Context, describe
from .cpu import pagecast_window, reference_window
from .measure import fmt, ratio, table
from .drive import open_pagecast

CLIP_SECONDS = 6.0  # page B (motion), captured once, encoded by each backend


async def _capture_clip(ctx: Context, path: Path, seconds: float) -> dict[str, Any]:
    """Page B as pagecast's renderer sees it, written as the IVF stream the encoder gets."""
    from ..core.ffmpeg import ivf_frame, ivf_header
    from ..core.settings import Settings
    from ..core.page import PageSpec
    from ..session.render import run_renderer

    settings = Settings.from_env({}, runtime_dir=str(ctx.workdir / "clip-runtime"))
    spec = PageSpec(url=ctx.page(PAGES["B"][0]), width=1920, height=1080, fps=FPS, jpeg_quality=95)
    frames = []
    send, recv = trio.open_memory_channel(8)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_renderer, spec, settings, send)
        t0 = None
        with trio.move_on_after(seconds + 1):
            async for frame in recv:
                t0 = frame.captured_at if t0 is None else t0
                if frame.captured_at - t0 > seconds:
                    break
                frames.append(frame)
        nursery.cancel_scope.cancel()
    with path.open("wb") as f:
        f.write(ivf_header(spec.width, spec.height, FPS))
        last = -1
        for frame in frames:
            pts = max(last + 1, round((frame.captured_at - t0) * FPS))
            f.write(ivf_frame(frame.jpeg, pts))
            last = pts
    return {"frames": len(frames), "seconds": seconds, "fps": round(len(frames) / seconds, 1)}


async def _encode_clip(clip: Path, out: Path, backend: str) -> dict[str, Any]:
    """The clip through the session's own FFmpeg arguments for ``backend`` (same rate
    control, keyframes and bitrate cap as a 1080p session), then SSIM against the clip."""
    from ..core.ffmpeg import EncodeSpec, ffmpeg_args
    from ..core.settings import PRESETS, Settings

    q = PRESETS["1080p"]
    spec = EncodeSpec(width=q.width, height=q.height, fps=q.fps, bitrate_kbps=q.bitrate_kbps, segment_duration=q.segment_duration, audio=False)
    ffmpeg = Settings.from_env({}).ffmpeg
    argv = [str(clip) if a == "/dev/fd/3" else a for a in ffmpeg_args(ffmpeg, spec, 3, None, backend=backend)]
    # The session's output options make a fragmented stream on a pipe; a plain file here.
    argv = argv[: argv.index("-max_interleave_delta")] + ["-f", "mp4", "-y", str(out)]
    t0 = time.monotonic()
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["encoder failed"])
    cmp = await trio.run_process(
        [ffmpeg, "-hide_banner", "-i", str(out), "-i", str(clip), "-lavfi",
         f"[0:v]format=yuv420p[a];[1:v]scale={q.width}:{q.height}:out_range=tv,format=yuv420p[b];[a][b]ssim", "-f", "null", "-"],
        capture_stdout=True, capture_stderr=True, check=False,
    )
    m = re.search(r"SSIM .*All:([0-9.]+) \(([0-9.]+|inf)\)", cmp.stderr.decode(errors="replace"))
    if not m:
        raise RuntimeError(f"SSIM not computed: {cmp.stderr.decode(errors='replace')[-300:]}")
    size = out.stat().st_size
    return {"ssim": float(m.group(1)), "ssim_db": m.group(2) if m.group(2) == "inf" else f"{float(m.group(2)):.1f}", "kbps": round(size * 8 / 1000 / CLIP_SECONDS), "encode_seconds": round(seconds, 2)}


async def run(ctx: Context) -> None:
    pc = ctx.pagecast
    with trio.fail_after(60):
        while (encoder := (await pc.client.get("/health")).json()["encoder"])["probing"]:
            await trio.sleep(0.2)
    probes = encoder["probes"]
    results: dict[str, Any] = {"chosen": encoder["chosen"], "probe_seconds": encoder.get("probe_seconds"), "probes": probes, "backends": {}}
    clip = ctx.workdir / "clip.ivf"
    ctx.progress(f"encoders: capturing {CLIP_SECONDS:g} s of page B at 1080p")
    results["clip"] = await _capture_clip(ctx, clip, CLIP_SECONDS)
    reference = ctx.results.get("cpu", {}).get("A/reference")
    if reference is None:
        ctx.progress("encoders: the reference pipeline on page A (for the CPU ratio)")
        reference = await reference_window(ctx, ctx.page(PAGES["A"][0]))
    results["reference_cpu_pct"] = reference.get("cpu_pct")
    for probe in probes:
        name = probe["backend"]
        if not probe.get("ok"):
            results["backends"][name] = {"ran": False, "why": probe.get("reason") or "failed its probe"}
            continue
        entry: dict[str, Any] = {"ran": True}
        try:
            ctx.progress(f"encoders: {name}: quality on the clip")
            entry.update(await _encode_clip(clip, ctx.workdir / f"clip-{name}.mp4", name))
            ctx.progress(f"encoders: {name}: CPU of a 1080p hls session on page A")
            async with open_pagecast(ctx.workdir, ["--encoder", name]) as forced:
                ctx.pagecast = forced
                window = await pagecast_window(ctx, ctx.page(PAGES["A"][0]), "hls")
            ctx.pagecast = pc
            entry["cpu_pct"] = window.get("cpu_pct")
            entry["ratio"] = ratio(window.get("cpu_pct"), reference.get("cpu_pct"))
        except Exception as exc:  # noqa: BLE001 - one backend's failure is a figure too
            entry["error"] = describe(exc)
        results["backends"][name] = entry
    ctx.results["encoders"] = results
    ctx.out(f"\n== 7. Encoders: each backend that works here, on the same clip and the same session (the startup probe took"
            f" {fmt(results['probe_seconds'], 2)} s and chose {results['chosen']})")
    c = results["clip"]
    ctx.out(f"  clip: {c['frames']} frames in {c['seconds']:g} s of page B (motion), 1920×1080, as the renderer captured them")
    rows = []
    for name, e in results["backends"].items():
        if not e["ran"]:
            rows.append([name, "cannot run here", "—", "—", "—", e["why"][:110]])
        elif "error" in e:
            rows.append([name, "failed", "—", "—", "—", e["error"][:110]])
        else:
            rows.append([name, f"{fmt(e.get('cpu_pct'))} %", fmt(e.get("ratio"), 3), f"{e['ssim']:.4f} ({e['ssim_db']} dB)", f"{e['kbps']}",
                         f"clip encoded in {e['encode_seconds']} s"])
    ctx.out(table(["backend", "CPU (page A, hls)", "ratio to reference", "SSIM vs clip", "kb/s", "note"], rows))
    ctx.out(f"  CPU: a 1080p hls session of page A with --encoder forced, as in section 1; ratio to the reference pipeline"
            f" ({fmt(results['reference_cpu_pct'])} %) measured in this run. SSIM: FFmpeg's ssim filter, each encoded frame against"
            " the JPEG the encoder was given (1 = identical).")
