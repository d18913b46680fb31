"""Which machine and which pagecast were measured: the header of every run, so figures from
different runs can be told apart."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil


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
    from ..lowlevel.binaries import find_chromium

    shell = os.environ.get("PAGECAST_CHROMIUM") or find_chromium()
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
