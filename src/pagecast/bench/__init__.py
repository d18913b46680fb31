"""``pagecast bench``: the figures of the issue, each next to a reference measured in the same run.

Machines are noisy (../shared/docs/measurements.md saw the reference itself vary by 10 %
between runs), so every CPU figure is also a ratio to a reference pipeline (Xvfb + Chromium
kiosk + ``ffmpeg -f x11grab``) run on the same page minutes earlier, and the CPU that the rest
of the machine used meanwhile is printed next to it. Sections (``--only``): cpu, startup,
latency, scale, contexts, cast, encoders. docs/benchmark.md says what each figure means and how it is taken.

Everything the benchmark starts (``pagecast serve``, the reference's Xvfb/Chromium/FFmpeg,
headless shells, the player browser) is an owned child (:func:`pagecast.proc.open_child`),
stopped when its block ends, on errors and on Ctrl-C too. The bench pages are served by a
small local HTTP server from ``static/``, so nothing is added to the service's API.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio

from ..lowlevel.httpserve import serve_http
from ..lowlevel.proc import Child, LineTail, StopPolicy, open_child, pump_lines

STATIC = Path(__file__).parents[1] / "static"
PAGES = {
    "A": ("bench-dashboard.html", "A: dashboard, 16 tiles"),
    "B": ("bench-motion.html", "B: dashboard + camera tile"),
}
CLOCK_PAGE = "bench-clock.html"
SECTIONS = ("cpu", "startup", "latency", "scale", "contexts", "cast", "encoders")
CLIP_SECONDS = 6.0  # the encoders section's clip of page B (motion), captured once, encoded by each backend
CAST_REPEATS = 3
CAST_TVS = {"ffmpeg": "127.0.0.2", "shaka": "127.0.0.3"}
CAST_FLAGS = ["--cast-hosts", ",".join(CAST_TVS.values()), "--mdns", "false"]
WARMUP = 5.0  # seconds between "running" and the start of a measuring window
SAMPLE_INTERVAL = 0.5  # CPU samples: a process that exits between two loses at most this much
MEMORY_INTERVAL = 2.0
STARTUP_REPEATS = 3
LATENCY_SKIP = 3.0  # the first seconds after the first frame: players still settle
LOW_DELAY = 1.5  # the low-latency player setting (watch page ?delay=)
FPS = 30
REFERENCE_CHROMIUM = "/usr/lib/chromium/chromium"
CHILD_POLICY = StopPolicy(polite_timeout=3.0, term_timeout=3.0)
TARGETS = {
    "cpu_a": 0.10, "cpu_b": 0.5, "fps_b": 15.0,
    "startup_fmp4": 1.5, "startup_hls": 3.0,
    "latency_hls": 2.5, "latency_fmp4": 1.0, "server_ms": 250.0,
}


class Unavailable(Exception):
    """A case that cannot run on this machine; the message says why (printed instead of a number)."""


class SessionFailed(Exception):
    """A pagecast session failed while starting (the service's own error is the message)."""


# ---------------------------------------------------------------------------------------
# Pure helpers (unit-tested in tests/test_bench.py)

ProcKey = tuple[int, float]  # (pid, create_time): a reused pid is another process


class CpuAccount:
    """CPU seconds (user+system) used by a changing set of processes over a window.

    Samples are cumulative CPU times per process. A process present at the first sample
    counts from that sample; one that appears later counts from zero if it was created
    after the window began (a renderer or an FFmpeg started mid-window is all ours), else
    from its first sample. A process that exits keeps its last sample, so at most one
    sampling interval of its CPU is lost.
    """

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self._first: dict[ProcKey, float] = {}
        self._last: dict[ProcKey, float] = {}

    def add(self, now: float, samples: dict[ProcKey, float]) -> None:
        first_sample = self.start is None
        if first_sample:
            self.start = now
        for key, cpu in samples.items():
            if key not in self._first:
                self._first[key] = 0.0 if (not first_sample and key[1] >= self.start) else cpu
            self._last[key] = max(cpu, self._last.get(key, 0.0))
        self.end = now

    @property
    def seconds(self) -> float:
        return sum(self._last[k] - self._first[k] for k in self._last)

    @property
    def processes(self) -> int:
        return len(self._last)

    def by_group(self, group_of: dict[ProcKey, str]) -> dict[str, float]:
        """% of one core per group (e.g. chromium, ffmpeg), groups as ``group_of`` names them."""
        elapsed = (self.end or 0.0) - (self.start or 0.0)
        out: dict[str, float] = {}
        for key in self._last:
            name = group_of.get(key, "other")
            out[name] = out.get(name, 0.0) + self._last[key] - self._first[key]
        return {k: 100.0 * v / elapsed if elapsed > 0 else 0.0 for k, v in sorted(out.items(), key=lambda kv: -kv[1])}

    def percent(self) -> float:
        """% of one core over the window."""
        if self.start is None or self.end is None or self.end <= self.start:
            return 0.0
        return 100.0 * self.seconds / (self.end - self.start)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}{unit}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table: text left-aligned, numbers right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_numberish(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(parts).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numberish(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.]+\s*\S{0,3}|—|", text.strip()))


def _summary_line(label: str, value: str, target: str, ok: bool | None) -> list[str]:
    mark = "—" if ok is None else ("yes" if ok else "NO")
    return [label, value, target, mark]


# ---------------------------------------------------------------------------------------
# Process-tree sampling


def _tree(roots: Sequence[int]) -> list[psutil.Process]:
    seen: dict[int, psutil.Process] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            seen[root.pid] = root
            for child in root.children(recursive=True):
                seen[child.pid] = child
        except psutil.Error:
            pass
    return list(seen.values())


def component(name: str) -> str:
    """Which part of a pipeline a process is, from its name: for the CPU breakdown."""
    low = name.lower()
    if low.startswith(("chrom", "chrome")):
        return "chromium"
    if low.startswith("python"):
        return "pagecast"
    return {"xvfb": "Xvfb"}.get(low, low)


def _cpu_samples(procs: Sequence[psutil.Process], names: dict[ProcKey, str] | None = None) -> dict[ProcKey, float]:
    out: dict[ProcKey, float] = {}
    for p in procs:
        try:
            with p.oneshot():
                t = p.cpu_times()
                key = (p.pid, p.create_time())
                out[key] = t.user + t.system
                if names is not None and key not in names:
                    names[key] = component(p.name())
        except psutil.Error:
            pass
    return out


def _memory(procs: Sequence[psutil.Process]) -> tuple[float, float, bool]:
    """(PSS, RSS, PSS exact?) in bytes summed over ``procs``: PSS shares pages between the
    processes that map them, so a sum over a tree counts Chromium's shared memory once."""
    pss = rss = 0.0
    exact = True
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            exact = exact and hasattr(info, "pss")
        except psutil.AccessDenied:
            try:
                r = p.memory_info().rss
            except psutil.Error:
                continue
            rss += r
            pss += r
            exact = False
        except psutil.Error:
            pass
    return pss, rss, exact


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (guest time is already in user; steal is not ours)."""
    t = psutil.cpu_times()
    total = sum(t)
    for name in ("idle", "iowait", "steal", "guest", "guest_nice"):
        total -= getattr(t, name, 0.0)
    return total


@dataclass
class Window:
    """One measuring window over a process tree."""

    seconds: float
    cpu_pct: float  # of one core
    processes: int
    pss_mb: float | None
    rss_mb: float | None
    pss_exact: bool
    machine_pct: float  # every core's busy time, as % of one core
    other_pct: float  # machine_pct minus this tree: everything else (the bench itself, other jobs)
    by_component: dict[str, float] = field(default_factory=dict)  # % of one core per part (chromium, ffmpeg, …)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["by_component"] = {k: round(v, 2) for k, v in self.by_component.items()}
        return out

    def breakdown(self) -> str:
        return ", ".join(f"{k} {v:.1f}" for k, v in self.by_component.items() if v >= 0.05)


def _sample(
    roots: Callable[[], Sequence[int]], with_memory: bool, names: dict[ProcKey, str]
) -> tuple[float, dict[ProcKey, float], tuple[float, float, bool] | None]:
    procs = _tree(roots())
    now = time.time()
    samples = _cpu_samples(procs, names)
    return now, samples, (_memory(procs) if with_memory else None)


async def measure(roots: Callable[[], Sequence[int]], seconds: float) -> Window:
    """CPU and memory of the trees under ``roots()`` over ``seconds`` (re-read every sample,
    so processes started during the window are counted)."""
    account = CpuAccount()
    busy0, t0 = _machine_busy(), time.time()
    names: dict[ProcKey, str] = {}
    now, samples, _ = await trio.to_thread.run_sync(_sample, roots, False, names)
    account.add(now, samples)
    memory: list[tuple[float, float, bool]] = []
    end = trio.current_time() + seconds
    next_memory = trio.current_time() + 1.0
    while trio.current_time() < end:
        await trio.sleep(max(0.0, min(SAMPLE_INTERVAL, end - trio.current_time())))
        want_memory = trio.current_time() >= next_memory
        now, samples, mem = await trio.to_thread.run_sync(_sample, roots, want_memory, names)
        account.add(now, samples)
        if mem is not None:
            memory.append(mem)
            next_memory += MEMORY_INTERVAL
    busy1, t1 = _machine_busy(), time.time()
    machine = 100.0 * (busy1 - busy0) / max(1e-6, t1 - t0)
    cpu = account.percent()
    pss = statistics.median(m[0] for m in memory) / 2**20 if memory else None
    rss = statistics.median(m[1] for m in memory) / 2**20 if memory else None
    return Window(
        seconds=round(account.end - account.start, 2) if account.start else 0.0,
        cpu_pct=cpu, processes=account.processes, pss_mb=pss, rss_mb=rss,
        pss_exact=all(m[2] for m in memory), machine_pct=machine, other_pct=max(0.0, machine - cpu),
        by_component=account.by_group(names),
    )


# ---------------------------------------------------------------------------------------
# Owned children


@contextlib.asynccontextmanager
async def owned(
    argv: Sequence[str],
    name: str,
    *,
    on_stderr: Callable[[str], None] | None = None,
    on_stdout: Callable[[str], None] | None = None,
    polite: Callable[[Child], Any] | None = None,
    policy: StopPolicy = CHILD_POLICY,
    stdin: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Child, LineTail]]:
    """A child whose output is drained (so it never blocks on a full pipe) until it exits;
    stopped at the end of the block, before the draining stops."""
    tail = LineTail(keep=40)
    async with (
        open_child(argv, name=name, polite=polite, policy=policy, stdin=stdin, stdout=on_stdout is not None, stderr=True, env=env) as child,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(pump_lines, child.stderr, tail, on_stderr or (lambda line: None))
        if on_stdout is not None:
            nursery.start_soon(pump_lines, child.stdout, LineTail(keep=4), on_stdout)
        try:
            yield child, tail
        finally:
            with trio.CancelScope(shield=True):
                await child.stop((lambda: polite(child)) if polite is not None else None, policy)
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------
# The page server: bench pages from static/, on 127.0.0.1, port 0


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve_pages() -> Iterator[str]:
    """Base URL of the bench pages; a thread serves them until the block ends."""
    with serve_http(functools.partial(_PageHandler, directory=str(STATIC)), "bench-pages") as url:
        yield url


# ---------------------------------------------------------------------------------------
# pagecast serve, as a subprocess


def _import_httpx():
    try:
        import httpx
    except ImportError:
        raise Unavailable("pagecast bench needs httpx: install the test extras (ops/install, or pip install -e '.[test]')") from None
    return httpx


class Pagecast:
    """A running ``pagecast serve`` and an HTTP client for its control API."""

    def __init__(self, child: Child, url: str, client: Any, tail: LineTail, warnings: list[str]):
        self.child = child
        self.url = url
        self.client = client
        self.tail = tail
        self.warnings = warnings
        self.start_failures: list[str] = []  # sessions that failed while starting (retried, and reported)
        self.exited_early = False  # pagecast serve was gone before we stopped it

    def roots(self) -> list[int]:
        return [self.child.pid]

    async def start(self, page: str, mode: str = "hls", *, quality: str = "1080p", attempts: int = 3) -> dict[str, Any]:
        """Start a session and wait until it is live. A session that fails while starting is
        retried (a flaky start should not void a whole CPU window) but counted in
        ``start_failures``, which the summary prints."""
        for attempt in range(attempts):
            r = await self.client.post("/start?wait=1", json={"url": page, "quality": quality, "mode": mode})
            data = r.json()
            if r.status_code < 400 and data.get("state") == "live":
                return data
            error = f"HTTP {r.status_code}: {data.get('error') or r.text[:300]}"
            if data.get("state") != "failed" or attempt == attempts - 1:
                raise RuntimeError(f"pagecast could not start {page} ({mode}): {error}")
            self.start_failures.append(error)
        raise AssertionError("unreachable")

    async def status(self, session_id: str) -> dict[str, Any]:
        return (await self.client.get(f"/sessions/{session_id}")).json()

    async def stop(self, session_id: str | None = None) -> None:
        """Stop one session (or all) and wait until its processes are gone."""
        await self.client.post("/stop", json={"id": session_id} if session_id else {})
        with trio.move_on_after(20):
            while True:
                if session_id:
                    if (await self.status(session_id)).get("state") not in ("starting", "live", "stopping"):
                        break
                elif (await self.client.get("/status")).json().get("active", 0) == 0:
                    break
                await trio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_pagecast(workdir: Path, flags: Sequence[str] = ()) -> AsyncIterator[Pagecast]:
    httpx = _import_httpx()
    argv = [
        sys.executable, "-m", "pagecast", "serve", "--host", "127.0.0.1", "--port", "0",
        "--runtime-dir", str(workdir / "runtime"), "--log-level", "info", "--log-format", "text", *flags,
    ]
    found: list[str] = []
    warnings: list[str] = []

    def on_line(line: str) -> None:
        m = re.search(r"pagecast listening on (\S+)", line)
        if m and not found:
            found.append(m.group(1))
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line):
            warnings.append(line)

    async def polite(child: Child) -> None:
        # SIGTERM to pagecast alone: its graceful shutdown stops its Chromium and FFmpeg.
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
        await child.wait()

    async with owned(argv, "pagecast", on_stderr=on_line, polite=polite, policy=StopPolicy(polite_timeout=15.0, term_timeout=3.0)) as (child, tail):
        with trio.move_on_after(30):
            while not found and child.poll() is None:
                await trio.sleep(0.05)
        if not found:
            raise RuntimeError(f"pagecast serve did not start ({child!r}): {tail.text()[-1500:]}")
        async with httpx.AsyncClient(base_url=found[0], timeout=90) as client:
            pc = Pagecast(child, found[0], client, tail, warnings)
            try:
                yield pc
            finally:
                pc.exited_early = child.poll() is not None


# ---------------------------------------------------------------------------------------
# The reference pipeline: Xvfb + Chromium kiosk + ffmpeg -f x11grab, 1080p30, libx264 medium 5 Mb/s


@dataclass
class Reference:
    roots: list[int]
    progress: dict[str, str] = field(default_factory=dict)

    def frames(self) -> int:
        try:
            return int(self.progress.get("frame", "0"))
        except ValueError:
            return 0


def _free_display() -> int:
    for n in range(99, 300):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise Unavailable("no free X display number between :99 and :299")


def _has_renderer(pid: int) -> bool:
    try:
        return any("--type=renderer" in " ".join(c.cmdline()) for c in psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return False


@contextlib.asynccontextmanager
async def open_reference(page_url: str, workdir: Path) -> AsyncIterator[Reference]:
    """The pipeline of measurements.md's reference, running on ``page_url`` until the block ends."""
    for binary, why in (("Xvfb", "the xvfb package"), (REFERENCE_CHROMIUM, "the chromium package"), ("ffmpeg", "the ffmpeg package")):
        if not shutil.which(binary):
            raise Unavailable(f"{binary} is not installed ({why}; ops/install installs it)")
    display = _free_display()
    async with contextlib.AsyncExitStack() as stack:
        xvfb, xtail = await stack.enter_async_context(
            owned(["Xvfb", f":{display}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"], "xvfb")
        )
        socket_path = Path(f"/tmp/.X11-unix/X{display}")
        with trio.move_on_after(10):
            while not socket_path.exists() and xvfb.poll() is None:
                await trio.sleep(0.05)
        if not socket_path.exists():
            raise Unavailable(f"Xvfb :{display} did not start ({xvfb!r}): {xtail.text()[-500:]}")
        profile = Path(tempfile.mkdtemp(prefix="reference-chromium-", dir=workdir))
        chromium, ctail = await stack.enter_async_context(owned(
            [
                REFERENCE_CHROMIUM, "--kiosk", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080", "--window-position=0,0",
                f"--user-data-dir={profile}", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", page_url,
            ],
            "reference-chromium",
            env={**os.environ, "DISPLAY": f":{display}"},
        ))
        with trio.move_on_after(20):
            while not _has_renderer(chromium.pid) and chromium.poll() is None:
                await trio.sleep(0.1)
        if chromium.poll() is not None or not _has_renderer(chromium.pid):
            raise Unavailable(f"Chromium did not open the page on Xvfb ({chromium!r}): {ctail.text()[-500:]}")
        reference = Reference(roots=[xvfb.pid, chromium.pid])

        def on_progress(line: str) -> None:
            key, _, value = line.partition("=")
            reference.progress[key.strip()] = value.strip()

        async def quit_ffmpeg(child: Child) -> None:
            if child.stdin is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    await child.stdin.send_all(b"q")

        ffmpeg, ftail = await stack.enter_async_context(owned(
            [
                "ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
                "-f", "x11grab", "-framerate", "30", "-video_size", "1920x1080", "-i", f":{display}",
                "-c:v", "libx264", "-preset", "medium", "-b:v", "5M", "-pix_fmt", "yuv420p", "-f", "mpegts", "-y", "/dev/null",
            ],
            "reference-ffmpeg",
            on_stdout=on_progress,
            polite=quit_ffmpeg,
            stdin=True,
        ))
        with trio.move_on_after(10):
            while reference.frames() == 0 and ffmpeg.poll() is None:
                await trio.sleep(0.1)
        if reference.frames() == 0:
            raise Unavailable(f"ffmpeg -f x11grab produced no frame ({ffmpeg!r}): {ftail.text()[-500:]}")
        reference.roots.append(ffmpeg.pid)
        yield reference


# ---------------------------------------------------------------------------------------
# The run


class Bench:
    """One benchmark run: its options, the shared servers, and every figure for --json."""

    def __init__(self, seconds: float, sections: list[str], workdir: Path, pages_url: str):
        self.seconds = seconds
        self.sections = sections
        self.workdir = workdir
        self.pages_url = pages_url
        self.pagecast: Pagecast | None = None
        self.results: dict[str, Any] = {}

    def page(self, name: str) -> str:
        return f"{self.pages_url}/{name}"

    # -- output -----------------------------------------------------------------------------

    @staticmethod
    def out(text: str = "") -> None:
        print(text, flush=True)

    @staticmethod
    def progress(text: str) -> None:
        print(f"  · {text}", file=sys.stderr, flush=True)

    # -- section 1: CPU per stream -------------------------------------------------------------

    async def _pagecast_window(self, page: str, mode: str) -> dict[str, Any]:
        pc = self.pagecast
        session = await pc.start(page, mode)
        sid = session["id"]
        try:
            await trio.sleep(WARMUP)
            before = await pc.status(sid)
            window = await measure(pc.roots, self.seconds)
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

    async def _reference_window(self, page: str) -> dict[str, Any]:
        async with open_reference(page, self.workdir) as ref:
            await trio.sleep(WARMUP)
            f0 = ref.frames()
            window = await measure(lambda: ref.roots, self.seconds)
            f1 = ref.frames()
            return {**window.to_dict(), "fps_encoded": round((f1 - f0) / window.seconds, 2), "ffmpeg_speed": ref.progress.get("speed")}

    async def section_cpu(self) -> None:
        cases = [("A", "reference"), ("A", "hls"), ("A", "fmp4"), ("B", "reference"), ("B", "hls")]
        results: dict[str, dict[str, Any]] = {}
        for page_key, pipeline in cases:
            name = f"{page_key}/{pipeline}"
            page = self.page(PAGES[page_key][0])
            self.progress(f"cpu: {pipeline} on page {page_key} ({WARMUP:g} s warm-up + {self.seconds:g} s)")
            try:
                if pipeline == "reference":
                    results[name] = await self._reference_window(page)
                else:
                    results[name] = await self._pagecast_window(page, pipeline)
            except Unavailable as exc:
                results[name] = {"unavailable": str(exc)}
        for name, r in results.items():
            if "cpu_pct" in r and not name.endswith("reference"):
                r["ratio"] = ratio(r["cpu_pct"], results.get(name.split("/")[0] + "/reference", {}).get("cpu_pct"))
        self.results["cpu"] = results

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
        self.out(f"\n== 1. CPU per stream: % of one core, user+system of the whole process tree; "
                 f"{WARMUP:g} s warm-up, {self.seconds:g} s window")
        self.out(table(["page", "pipeline", "CPU %", "ratio", "fps captured", "fps out", "PSS MB", "rest of machine %"], rows))
        for name, r in results.items():
            if "unavailable" in r:
                self.out(f"  {name}: not measured: {r['unavailable']}")
        for page_key in PAGES:
            ref = results.get(f"{page_key}/reference", {})
            if ref.get("fps_encoded") is not None and ref["fps_encoded"] < 28:
                ref["capped"] = True
                self.out(f"  note: the reference on page {page_key} wrote only {ref['fps_encoded']:.1f} of 30 frames/s: it ran out of CPU"
                         f" (machine {ref['machine_pct']:.0f} % busy of {100 * (os.cpu_count() or 1)} %), so its CPU figure is capped by"
                         f" the machine and the ratios on page {page_key} are too high (pessimistic for pagecast).")
        self.out("  by process (% of one core):")
        for page_key, pipeline in cases:
            r = results[f"{page_key}/{pipeline}"]
            if "by_component" in r:
                parts = ", ".join(f"{k} {v:.1f}" for k, v in r["by_component"].items() if v >= 0.05)
                self.out(f"    {page_key} {labels[pipeline].split(':')[0]}: {parts}")
        self.out("  ratio = CPU / reference CPU on the same page, this run. fps captured: frames Chromium drew and pagecast"
                 " captured (only changed ones); fps out: frames the encoder wrote (reference: x11grab, always 30).")

    # -- section 2: startup -------------------------------------------------------------------

    async def _startup_once(self, browser: Any, page: str, mode: str, player: str) -> dict[str, Any]:
        pc = self.pagecast
        t_post = time.time()
        r = await pc.client.post("/start", json={"url": page, "quality": "1080p", "mode": mode})
        session = r.json()
        if r.status_code >= 400:
            raise RuntimeError(f"POST /start: HTTP {r.status_code}: {session.get('error')}")
        sid = session["id"]
        tab = None
        try:
            with trio.fail_after(60):
                while True:
                    status = await pc.status(sid)
                    if status["state"] == "live":
                        break
                    if status["state"] not in ("starting",):
                        raise SessionFailed(f"session {status['state']}: {status.get('error')}")
                    await trio.sleep(0.02)
            t_live = time.time()
            tab = await browser.open(f"{pc.url}/watch/{sid}?player={player}")
            stats: dict[str, Any] = {}
            with trio.move_on_after(30):
                while not stats.get("firstFrameAt"):
                    await trio.sleep(0.05)
                    stats = await tab.stats() or {}
                    if stats.get("errors"):
                        break
            if not stats.get("firstFrameAt"):
                raise RuntimeError(f"{player} showed no frame within 30 s; errors: {stats.get('errors')}")
            return {
                "seconds": round(stats["firstFrameAt"] / 1000 - t_post, 3),
                "live_after": round(t_live - t_post, 3),
                "server_startup": status.get("startup_seconds"),
                "player_seconds": round(stats["firstFrameAt"] / 1000 - t_live, 3),
            }
        finally:
            if tab is not None:
                with contextlib.suppress(Exception):
                    await tab.close()
            await pc.stop(sid)

    async def section_startup(self) -> None:
        from ..lowlevel.browser import open_player_browser

        page = self.page(PAGES["A"][0])
        results: dict[str, Any] = {}
        async with open_player_browser() as browser:
            for mode, player in (("fmp4", "native"), ("hls", "hlsjs")):
                runs = []
                for i in range(STARTUP_REPEATS):
                    self.progress(f"startup: {mode} in {player}, run {i + 1}/{STARTUP_REPEATS}")
                    for attempt in range(3):
                        try:
                            runs.append(await self._startup_once(browser, page, mode, player))
                            break
                        except SessionFailed as exc:  # counted, then the run is done again
                            self.pagecast.start_failures.append(str(exc))
                            if attempt == 2:
                                runs.append({"error": str(exc)})
                        except Exception as exc:  # noqa: BLE001 - one failed run is a figure too
                            runs.append({"error": _describe(exc)})
                            break
                ok = [r["seconds"] for r in runs if "seconds" in r]
                results[mode] = {
                    "player": player,
                    "runs": runs,
                    "median": statistics.median(ok) if ok else None,
                    "median_live_after": statistics.median([r["live_after"] for r in runs if "live_after" in r]) if ok else None,
                    "median_player": statistics.median([r["player_seconds"] for r in runs if "player_seconds" in r]) if ok else None,
                }
        self.results["startup"] = results
        self.out("\n== 2. Startup: POST /start → first frame shown by a real player (player browser already running; page A, 1080p)")
        rows = []
        for mode, r in results.items():
            each = ", ".join(fmt(x.get("seconds"), 2) if "seconds" in x else "failed" for x in r["runs"])
            target = TARGETS[f"startup_{mode}"]
            rows.append([f"{mode} · {'Chromium native' if r['player'] == 'native' else 'hls.js'}", fmt(r["median"], 2, " s"), each,
                         fmt(r["median_live_after"], 2, " s"), fmt(r["median_player"], 2, " s"), f"≤ {target:g} s"])
        self.out(table(["mode · player", "median", "each run (s)", "→ live", "live → frame", "target"], rows))
        for mode, r in results.items():
            for x in r["runs"]:
                if "error" in x:
                    self.out(f"  {mode}: a run failed: {x['error']}")
        self.out("  → live: POST until /sessions/<id> says live (polled every 20 ms); live → frame: opening the watch page until"
                 " the player's first frame (requestVideoFrameCallback).")

    # -- section 3: glass-to-glass latency ----------------------------------------------------------

    async def _latency_run(self, browser: Any, sid: str, player: str, delay: float | None) -> dict[str, Any]:
        pc = self.pagecast
        url = f"{pc.url}/watch/{sid}?player={player}&measure=1" + (f"&delay={delay:g}" if delay is not None else "")
        run_seconds = max(self.seconds, LATENCY_SKIP + 5)
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
            busy0, t0 = _machine_busy(), time.time()
            await trio.sleep(run_seconds - LATENCY_SKIP)
            busy1, t1 = _machine_busy(), time.time()
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

    async def section_latency(self) -> None:
        from ..lowlevel.browser import open_player_browser

        pc = self.pagecast
        page = self.page(CLOCK_PAGE)
        runs: list[dict[str, Any]] = []
        server: dict[str, Any] = {}
        async with open_player_browser() as browser:
            for mode, configs in (("hls", [("hlsjs", None), ("hlsjs", LOW_DELAY), ("shaka", None), ("shaka", LOW_DELAY)]), ("fmp4", [("native", None)])):
                self.progress(f"latency: starting a {mode} session on {CLOCK_PAGE}")
                session = await pc.start(page, mode)
                try:
                    # Every player joins a stream that has been running a while, as a TV joins a
                    # running cast: the first one would otherwise start near the live edge of a
                    # playlist that holds only one segment, and the configurations would not compare.
                    await trio.sleep(WARMUP)
                    for player, delay in configs:
                        self.progress(f"latency: {mode} in {player}" + (f", delay {delay:g} s" if delay is not None else ", default settings"))
                        try:
                            runs.append({"mode": mode, **await self._latency_run(browser, session["id"], player, delay)})
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
        self.results["latency"] = {"runs": runs, "server": server}

        self.out(f"\n== 3. Glass-to-glass latency: {CLOCK_PAGE} at 1080p30, time barcode read from every displayed frame;"
                 f" ~{max(self.seconds, LATENCY_SKIP + 5):g} s per player, first {LATENCY_SKIP:g} s skipped")
        rows = []
        for r in runs:
            setting = "default" if r.get("delay") is None else f"delay={r['delay']:g} s"
            name = {"hlsjs": "hls.js", "shaka": "Shaka", "native": "Chromium native"}[r["player"]]
            if "error" in r:
                rows.append([r["mode"], name, setting, "failed", "", "", "", ""])
                continue
            rows.append([r["mode"], name, setting, fmt(_s(r["median_ms"]), 2, " s"), fmt(_s(r["p90_ms"]), 2, " s"), str(r["stalls"]),
                         f"{r['samples']}", fmt(r["fps_shown"]), fmt(r["machine_pct"], 0)])
        self.out(table(["mode", "player", "setting", "median", "p90", "stalls", "barcodes read", "fps shown", "machine CPU %"], rows))
        for r in runs:
            if "error" in r:
                self.out(f"  {r['mode']} {r['player']}: failed: {r['error']}")
            elif r.get("errors"):
                self.out(f"  {r['mode']} {r['player']}: player errors: {r['errors'][:3]}")
        for mode, s in server.items():
            pl = s["pipeline_latency_ms"] or {}
            self.out(f"  server side, {mode}: page change → fragment available to viewers: p50 {fmt(s['p50_ms'], 0)} ms,"
                     f" p95 {fmt(s['p95_ms'], 0)} ms (pipeline_latency_ms p50 {fmt(pl.get('p50'), 0)} / p95 {fmt(pl.get('p95'), 0)}"
                     f" + {s['capture_wait_ms']:g} ms, half a frame interval of capture wait)")
        self.out("  machine CPU %: every core's busy time during the run, as % of one core (the player browser decodes in"
                 " software on this machine too).")

    # -- section 4: scaling ---------------------------------------------------------------------------

    async def section_scale(self) -> None:
        pc = self.pagecast
        page = self.page(PAGES["A"][0])
        results: dict[str, Any] = {}
        self.progress("scale: pagecast with no session")
        idle = await measure(pc.roots, min(self.seconds, 5.0))
        results["0"] = {**idle.to_dict(), "sessions": 0}
        sessions: list[str] = []
        try:
            for n in (1, 2, 4):
                self.progress(f"scale: {n} hls 1080p session(s) on page A")
                while len(sessions) < n:
                    sessions.append((await pc.start(page, "hls"))["id"])
                await trio.sleep(WARMUP)
                before = [await pc.status(s) for s in sessions]
                window = await measure(pc.roots, self.seconds)
                after = [await pc.status(s) for s in sessions]
                captured = sum(a["frames"]["captured"] - b["frames"]["captured"] for a, b in zip(after, before))
                results[str(n)] = {**window.to_dict(), "sessions": n, "fps_captured_per_stream": round(captured / n / window.seconds, 2),
                                   "live": sum(a["state"] == "live" for a in after)}
        finally:
            await pc.stop()
        self.results["scale"] = results
        self.out(f"\n== 4. Scaling: n concurrent hls 1080p sessions on page A (one Chromium + one FFmpeg each); {self.seconds:g} s window")
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
        self.out(table(["streams", "CPU %", "CPU %/stream", "PSS MB", "PSS/stream", "added PSS/stream", "RSS MB", "procs",
                        "fps captured/stream", "rest of machine %"], rows))
        for key, r in results.items():
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["by_component"].items() if v >= 0.05)
            self.out(f"  {key} stream(s), CPU by process: {parts or '—'}")
        exact = all(r.get("pss_exact", True) for r in results.values())
        self.out(f"  memory: {'PSS' if exact else 'PSS where readable, else RSS'} summed over pagecast's tree (the service"
                 " itself included), median of samples every 2 s; added PSS/stream = (PSS − PSS with no session) / n.")

    # -- section 5: one Chromium per session vs one shared Chromium ---------------------------------------

    async def _shell_variant(self, browsers: int, targets_per_browser: int, contexts: bool) -> dict[str, Any]:
        from ..core.settings import Settings
        from ..lowlevel.cdp import open_cdp
        from ..session.render import PageSpec, chromium_argv

        settings = Settings.from_env()
        if not shutil.which(settings.chromium):
            raise Unavailable(f"{settings.chromium} is not installed (chromium-headless-shell)")
        url = self.page(PAGES["A"][0])
        counters: list[dict[str, int]] = []
        async with contextlib.AsyncExitStack() as stack:
            roots: list[int] = []
            cdps = []
            for b in range(browsers):
                profile = Path(tempfile.mkdtemp(prefix="shell-", dir=self.workdir))
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
                    raise Unavailable(f"{settings.chromium} did not start: {tail.text()[-500:]}")
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
            window = await measure(lambda: roots, self.seconds)
            after = [dict(c) for c in counters]
            nursery.cancel_scope.cancel()
        per = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before)]
        return {
            **window.to_dict(),
            "targets": len(per),
            "ticks_per_s": round(sum(p["ticks"] for p in per) / len(per) / window.seconds, 2),
            "captured_per_s": round(sum(p["shots"] for p in per) / len(per) / window.seconds, 2),
        }

    async def section_contexts(self) -> None:
        from ..session import render

        results: dict[str, Any] = {}
        for key, browsers, per, contexts in (("separate", 4, 1, False), ("shared", 1, 4, True)):
            label = "4 × chromium-headless-shell" if key == "separate" else "1 shell, 4 browser contexts"
            self.progress(f"contexts: {label}, page A at 1080p, begin-frames at {FPS}/s")
            try:
                results[key] = await self._shell_variant(browsers, per, contexts)
            except Unavailable as exc:
                results[key] = {"unavailable": str(exc)}
        self.results["contexts"] = results
        step = getattr(render, "IDLE_STEP", 1)
        self.out(f"\n== 5. Four streams of page A without the encoder: one Chromium each vs one shared Chromium with a browser"
                 f" context per stream; begin-frames as render.py does ({FPS}/s, 1/{step} of that after {getattr(render, 'IDLE_AFTER', 0):g} s"
                 f" without a change), JPEG only on damage")
        rows = []
        for key, label in (("separate", "(a) 4 × chromium-headless-shell"), ("shared", "(b) 1 shell, 4 browser contexts")):
            r = results[key]
            if "unavailable" in r:
                rows.append([label, "n/a", "", "", "", "", ""])
                continue
            rows.append([label, fmt(r["cpu_pct"]), fmt(r["pss_mb"], 0), fmt(r["rss_mb"], 0), str(r["processes"]),
                         fmt(r["ticks_per_s"]), fmt(r["captured_per_s"])])
        self.out(table(["variant", "CPU %", "PSS MB", "RSS MB", "procs", "ticks/s per stream", "captured/s per stream"], rows))
        for key, r in results.items():
            if "unavailable" in r:
                self.out(f"  {key}: not measured: {r['unavailable']}")
        sep, sh = results.get("separate", {}), results.get("shared", {})
        if "cpu_pct" in sep and "cpu_pct" in sh:
            self.out(f"  shared/separate: CPU {fmt(ratio(sh['cpu_pct'], sep['cpu_pct']), 2)}, PSS {fmt(ratio(sh['pss_mb'], sep['pss_mb']), 2)}."
                     " A shared browser must serialize begin-frames of all its targets (overlapping ones crash its GPU"
                     " process), so one busy page delays every other stream's frames.")

    # -- summary ------------------------------------------------------------------------------------

    # -- section 6: casting to the virtual TV -----------------------------------------------------------

    async def _cast_start(self, pc: Pagecast, tv: Any, device: str) -> dict[str, Any]:
        t0 = time.monotonic()
        r = await pc.client.post("/start", json={"url": self.page(PAGES["A"][0]), "device": device})
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

    async def _children_gone(self, pc: Pagecast, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while _tree([pc.child.pid])[1:]:
                await trio.sleep(0.02)

    async def _drop_noticed(self, pc: Pagecast, tv: Any, device: str) -> float:
        run = await self._cast_start(pc, tv, device)
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

    async def section_cast(self) -> None:
        from ..virtual_tv import open_virtual_tv

        results: dict[str, Any] = {"playing": {}, "remote_stop": [], "drop": {}}
        async with contextlib.AsyncExitStack() as stack:
            tvs = {}
            for player, host in CAST_TVS.items():
                tvs[player] = await stack.enter_async_context(open_virtual_tv(host=host, name=f"bench TV ({player})", player=player))
            self.progress("cast: starting pagecast serve")
            self.pagecast = pc = await stack.enter_async_context(open_pagecast(self.workdir, CAST_FLAGS))
            for player, tv in tvs.items():
                runs = []
                for i in range(CAST_REPEATS):
                    self.progress(f"cast: /start → PLAYING on the virtual TV ({player} player), run {i + 1}/{CAST_REPEATS}")
                    try:
                        run = await self._cast_start(pc, tv, tv.host)
                        runs.append(run)
                        await pc.stop(run["id"])
                        await self._children_gone(pc)
                    except Exception as exc:  # noqa: BLE001 - a failed run is a figure too
                        runs.append({"error": _describe(exc)})
                results["playing"][player] = runs
            tv = tvs["ffmpeg"]
            for i in range(CAST_REPEATS):
                self.progress(f"cast: stop on the TV's remote → last child gone, run {i + 1}/{CAST_REPEATS}")
                run = await self._cast_start(pc, tv, tv.host)
                await trio.sleep(2)
                t0 = time.monotonic()
                tv.remote_stop()
                with trio.fail_after(20):
                    while (await pc.status(run["id"]))["state"] != "stopped":
                        await trio.sleep(0.02)
                noticed = time.monotonic() - t0
                await self._children_gone(pc)
                results["remote_stop"].append({"noticed": noticed, "children_gone": time.monotonic() - t0})
            self.progress("cast: silent network drop → noticed (status requests)")
            results["drop"]["liveness"] = await self._drop_noticed(pc, tv, tv.host)
            self.progress("cast: silent network drop → noticed (pychromecast's heartbeat alone: the reference)")
            async with open_pagecast(self.workdir, [*CAST_FLAGS, "--cast-liveness-interval", "0"]) as bare:
                results["drop"]["heartbeat"] = await self._drop_noticed(bare, tv, tv.host)
        self.results["cast"] = results
        self.out("\n== 6. Casting: pagecast → pychromecast → CASTV2/TLS → virtual TV on loopback → its player (page A, 1080p hls)")
        rows = []
        for player, runs in results["playing"].items():
            ok = [r for r in runs if "playing" in r]
            each = ", ".join(fmt(r["playing"], 2) if "playing" in r else "failed" for r in runs)
            rows.append([f"/start → PLAYING ({player} player)", fmt(statistics.median([r["playing"] for r in ok]), 2, " s") if ok else "failed", each,
                         fmt(statistics.median([r["live"] for r in ok if r.get("live")]), 2, " s") if ok else "—",
                         fmt(statistics.median([r["answered"] for r in ok]), 2, " s") if ok else "—"])
        self.out(table(["figure", "median", "each run (s)", "stream live at", "/start answered"], rows))
        for player, runs in results["playing"].items():
            for r in runs:
                if "error" in r:
                    self.out(f"  {player}: a run failed: {r['error']}")
        stops = results["remote_stop"]
        self.out(f"  remote stop → session stopped: median {fmt(statistics.median([r['noticed'] for r in stops]), 2, ' s')};"
                 f" → last child of pagecast gone: median {fmt(statistics.median([r['children_gone'] for r in stops]), 2, ' s')}"
                 f" (each: {', '.join(fmt(r['children_gone'], 2) for r in stops)})")
        d = results["drop"]
        self.out(f"  silent network drop → noticed: {fmt(d['liveness'], 2, ' s')} with status requests every 1.5 s (3 s timeout);"
                 f" {fmt(d['heartbeat'], 2, ' s')} with pychromecast's heartbeat alone; ratio {fmt(ratio(d['liveness'], d['heartbeat']), 2)}")

    # -- section 7: encoder backends ------------------------------------------------------------------

    async def _capture_clip(self, path: Path, seconds: float) -> dict[str, Any]:
        """Page B as pagecast's renderer sees it, written as the IVF stream the encoder gets."""
        from ..core.ffmpeg import ivf_frame, ivf_header
        from ..core.settings import Settings
        from ..session.render import PageSpec, run_renderer

        settings = Settings.from_env({}, runtime_dir=str(self.workdir / "clip-runtime"))
        spec = PageSpec(url=self.page(PAGES["B"][0]), width=1920, height=1080, fps=FPS, jpeg_quality=95)
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

    async def _encode_clip(self, clip: Path, out: Path, backend: str) -> dict[str, Any]:
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

    async def section_encoders(self) -> None:
        pc = self.pagecast
        with trio.fail_after(60):
            while (encoder := (await pc.client.get("/health")).json()["encoder"])["probing"]:
                await trio.sleep(0.2)
        probes = encoder["probes"]
        results: dict[str, Any] = {"chosen": encoder["chosen"], "probe_seconds": encoder.get("probe_seconds"), "probes": probes, "backends": {}}
        clip = self.workdir / "clip.ivf"
        self.progress(f"encoders: capturing {CLIP_SECONDS:g} s of page B at 1080p")
        results["clip"] = await self._capture_clip(clip, CLIP_SECONDS)
        reference = self.results.get("cpu", {}).get("A/reference")
        if reference is None:
            self.progress("encoders: the reference pipeline on page A (for the CPU ratio)")
            reference = await self._reference_window(self.page(PAGES["A"][0]))
        results["reference_cpu_pct"] = reference.get("cpu_pct")
        for probe in probes:
            name = probe["backend"]
            if not probe.get("ok"):
                results["backends"][name] = {"ran": False, "why": probe.get("reason") or "failed its probe"}
                continue
            entry: dict[str, Any] = {"ran": True}
            try:
                self.progress(f"encoders: {name}: quality on the clip")
                entry.update(await self._encode_clip(clip, self.workdir / f"clip-{name}.mp4", name))
                self.progress(f"encoders: {name}: CPU of a 1080p hls session on page A")
                async with open_pagecast(self.workdir, ["--encoder", name]) as forced:
                    self.pagecast = forced
                    window = await self._pagecast_window(self.page(PAGES["A"][0]), "hls")
                self.pagecast = pc
                entry["cpu_pct"] = window.get("cpu_pct")
                entry["ratio"] = ratio(window.get("cpu_pct"), reference.get("cpu_pct"))
            except Exception as exc:  # noqa: BLE001 - one backend's failure is a figure too
                entry["error"] = _describe(exc)
            results["backends"][name] = entry
        self.results["encoders"] = results
        self.out(f"\n== 7. Encoders: each backend that works here, on the same clip and the same session (the startup probe took"
                 f" {fmt(results['probe_seconds'], 2)} s and chose {results['chosen']})")
        c = results["clip"]
        self.out(f"  clip: {c['frames']} frames in {c['seconds']:g} s of page B (motion), 1920×1080, as the renderer captured them")
        rows = []
        for name, e in results["backends"].items():
            if not e["ran"]:
                rows.append([name, "cannot run here", "—", "—", "—", e["why"][:110]])
            elif "error" in e:
                rows.append([name, "failed", "—", "—", "—", e["error"][:110]])
            else:
                rows.append([name, f"{fmt(e.get('cpu_pct'))} %", fmt(e.get("ratio"), 3), f"{e['ssim']:.4f} ({e['ssim_db']} dB)", f"{e['kbps']}",
                             f"clip encoded in {e['encode_seconds']} s"])
        self.out(table(["backend", "CPU (page A, hls)", "ratio to reference", "SSIM vs clip", "kb/s", "note"], rows))
        self.out(f"  CPU: a 1080p hls session of page A with --encoder forced, as in section 1; ratio to the reference pipeline"
                 f" ({fmt(results['reference_cpu_pct'])} %) measured in this run. SSIM: FFmpeg's ssim filter, each encoded frame against"
                 " the JPEG the encoder was given (1 = identical).")

    def summary(self) -> list[list[str]]:
        rows: list[list[str]] = []
        cpu = self.results.get("cpu", {})
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
            s = self.results.get("startup", {}).get(mode)
            if s:
                target = TARGETS[f"startup_{mode}"]
                rows.append(_summary_line(label, fmt(s["median"], 2, " s"), f"≤ {target:g} s", None if s["median"] is None else s["median"] <= target))
        lat = self.results.get("latency", {})
        hls_runs = [r for r in lat.get("runs", []) if r["mode"] == "hls" and r.get("median_ms") is not None]
        if hls_runs:
            clean = [r for r in hls_runs if r["stalls"] == 0] or hls_runs
            best = min(clean, key=lambda r: r["median_ms"])
            name = {"hlsjs": "hls.js", "shaka": "Shaka"}[best["player"]] + (f" delay {best['delay']:g}" if best["delay"] is not None else " default")
            rows.append(_summary_line(f"Glass-to-glass, hls, best ({name})", f"{fmt(_s(best['median_ms']), 2)} s, {best['stalls']} stalls",
                                      f"≤ {TARGETS['latency_hls']:g} s, 0 stalls", best["median_ms"] / 1000 <= TARGETS["latency_hls"] and best["stalls"] == 0))
        for r in lat.get("runs", []):
            if r["mode"] == "fmp4" and r.get("median_ms") is not None:
                rows.append(_summary_line("Glass-to-glass, fmp4, Chromium native", f"{fmt(_s(r['median_ms']), 2)} s, {r['stalls']} stalls",
                                          f"≤ {TARGETS['latency_fmp4']:g} s, 0 stalls", r["median_ms"] / 1000 <= TARGETS["latency_fmp4"] and r["stalls"] == 0))
        srv = lat.get("server", {}).get("fmp4")
        if srv and srv.get("p50_ms") is not None:
            rows.append(_summary_line("Page change → fragment leaves server (fmp4)", f"p50 {srv['p50_ms']:.0f} ms, p95 {srv['p95_ms']:.0f} ms",
                                      f"≤ {TARGETS['server_ms']:g} ms", srv["p50_ms"] <= TARGETS["server_ms"]))
        scale = self.results.get("scale", {})
        if "4" in scale:
            r = scale["4"]
            rows.append(_summary_line("4 hls streams on page A: per stream", f"{fmt(r['cpu_pct'] / 4)} % CPU, {fmt((r['pss_mb'] or 0) / 4, 0)} MB PSS", "—", None))
        c = self.results.get("cast", {})
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
        enc = self.results.get("encoders", {})
        for name, e in enc.get("backends", {}).items():
            if e.get("ran") and "ssim" in e:
                rows.append(_summary_line(f"Encoder {name}: CPU ratio / SSIM at its bitrate", f"{fmt(e.get('ratio'), 3)} / {e['ssim']:.4f} at {e['kbps']} kb/s", "—", None))
            elif not e.get("ran"):
                rows.append(_summary_line(f"Encoder {name}", "cannot run here", "—", None))
        ctx = self.results.get("contexts", {})
        if "cpu_pct" in ctx.get("separate", {}) and "cpu_pct" in ctx.get("shared", {}):
            s, t = ctx["separate"], ctx["shared"]
            rows.append(_summary_line("4 streams: separate vs shared Chromium", f"CPU {fmt(s['cpu_pct'])} vs {fmt(t['cpu_pct'])} %,"
                                      f" PSS {fmt(s['pss_mb'], 0)} vs {fmt(t['pss_mb'], 0)} MB", "—", None))
        return rows

    # -- driver ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        self.results["machine"] = machine_info()
        self.results["options"] = {"seconds": self.seconds, "warmup": WARMUP, "sections": self.sections}
        m = self.results["machine"]
        self.out(f"pagecast bench — {m['date']}")
        self.out(f"  machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, load average {m['loadavg']}")
        self.out(f"  {m['pagecast']} · {m['chromium']} · {m['ffmpeg']} · Python {m['python']} · Linux {m['kernel']}")
        errors: dict[str, str] = {}
        self.results["errors"] = errors
        warnings: list[str] = []
        failures: list[str] = []
        for name in SECTIONS:
            if name not in self.sections:
                continue
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if name not in ("contexts", "cast"):
                        # A pagecast per section: a failure (or an outside kill) stays in its section.
                        self.progress(f"{name}: starting pagecast serve")
                        self.pagecast = await stack.enter_async_context(open_pagecast(self.workdir))
                    try:
                        await getattr(self, f"section_{name}")()
                    finally:
                        if self.pagecast is not None:
                            warnings += self.pagecast.warnings
                            failures += self.pagecast.start_failures
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                errors[name] = _describe(exc)
                pc = self.pagecast
                if pc is not None and pc.exited_early:
                    last = [line for line in pc.tail.lines if "SIGTERM" in line or "ERROR" in line][-2:]
                    errors[name] += f" (pagecast serve exited on its own: {pc.child!r}; {' | '.join(last) or 'no log'})"
                self.out(f"\n== {name}: failed: {errors[name]}")
            finally:
                self.pagecast = None
        self.results["pagecast_warnings"] = warnings
        self.results["pagecast_start_failures"] = failures
        rows = self.summary()
        self.results["summary"] = [dict(zip(("figure", "measured", "target", "met"), r)) for r in rows]
        self.out("\n== Summary (targets from the issue; ratios against the reference measured in this run)")
        if rows:
            self.out(table(["figure", "measured", "target", "met"], rows))
        failures = self.results.get("pagecast_start_failures") or []
        if failures:
            self.out(f"  pagecast sessions that failed while starting (each was retried): {len(failures)}; first: {failures[0][:300]}")
        warnings = self.results.get("pagecast_warnings") or []
        if warnings:
            self.out(f"  pagecast logged {len(warnings)} warning(s)/error(s) during the run; first: {warnings[0][:200]}")
        if errors:
            self.out(f"  sections that failed: {', '.join(errors)}")


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def _describe(exc: BaseException) -> str:
    from ..lowlevel.groups import flatten

    leaves = [e for e in flatten(exc) if not isinstance(e, trio.Cancelled)] or [exc]
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves[:3])


async def _drive_target(session: Any, lock: trio.Lock, stats: dict[str, int], clock_offset: float) -> None:
    """Tick one begin-frame-controlled target like render.py: a steady 30/s schedule (1/IDLE_STEP
    of it once the page has been quiet for IDLE_AFTER), a screenshot only after a frame with damage."""
    from ..session import render

    idle_after, idle_step = getattr(render, "IDLE_AFTER", math.inf), getattr(render, "IDLE_STEP", 1)
    interval = 1.0 / FPS
    deadline = trio.current_time()
    quiet_since = deadline
    step = 1
    while True:
        deadline += interval * step
        now = trio.current_time()
        if now - deadline > interval:
            deadline += math.floor((now - deadline) / interval) * interval
        await trio.sleep_until(deadline)
        frame_time = (deadline - clock_offset) * 1000.0
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
        if damaged:
            quiet_since, step = trio.current_time(), 1
        elif trio.current_time() - quiet_since >= idle_after:
            step = idle_step


def _first_line(argv: list[str]) -> str:
    """First line of a ``--version``; subprocess.run kills and reaps the child on timeout or Ctrl-C."""
    try:
        out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return f"{argv[0]}: unknown version"


def source_version() -> str:
    """Which pagecast was measured: the commit, and whether src/ had local changes."""
    from .. import __version__

    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists() or not shutil.which("git"):
        return f"pagecast {__version__}"
    head = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"], check=False, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return f"pagecast {__version__} at {head}" + (" + local changes in src/" if dirty else "")


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from ..core.settings import Settings

    try:
        shell = Settings.from_env().chromium
    except Exception:  # noqa: BLE001 - only for the version line
        shell = "chromium-headless-shell"
    ffmpeg = _first_line(["ffmpeg", "-version"])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "chromium": _first_line([shell, "--version"]),
        "ffmpeg": " ".join(ffmpeg.split()[:3]),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "pagecast": source_version(),
    }


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
    bench: Bench | None = None
    code = 0
    try:
        with serve_pages() as pages_url:
            bench = Bench(seconds, sections, workdir, pages_url)
            trio.run(bench.run)
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
        if json_out and bench is not None:
            Path(json_out).write_text(json.dumps(bench.results, indent=1, default=str) + "\n")
            print(f"pagecast bench: figures written to {json_out}", file=sys.stderr)
    return code
