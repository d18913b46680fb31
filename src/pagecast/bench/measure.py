"""How the bench measures: CPU and memory of a changing process tree over a window, and how it
prints figures. The pure parts (CpuAccount, percentile, table, component) are unit-tested in
tests/test_bench.py: the bench's figures are only as good as they are."""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
import trio

SAMPLE_INTERVAL = 0.5  # CPU samples: a process that exits between two loses at most this much
MEMORY_INTERVAL = 2.0

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


def ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


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


# ---------------------------------------------------------------------------------------
# Process-tree sampling


def process_tree(roots: Sequence[int]) -> list[psutil.Process]:
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


def machine_busy() -> float:
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
    procs = process_tree(roots())
    now = time.time()
    samples = _cpu_samples(procs, names)
    return now, samples, (_memory(procs) if with_memory else None)


async def measure(roots: Callable[[], Sequence[int]], seconds: float) -> Window:
    """CPU and memory of the trees under ``roots()`` over ``seconds`` (re-read every sample,
    so processes started during the window are counted)."""
    account = CpuAccount()
    busy0, t0 = machine_busy(), time.time()
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
    busy1, t1 = machine_busy(), time.time()
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
