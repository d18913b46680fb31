"""What every section of the bench shares: the run's options, its figures, the pages, and how it prints."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from .homeassistant import HomeAssistant
    from .drive import Pagecast

PAGES = {
    "A": ("bench-dashboard.html", "A: dashboard, 16 tiles"),
    "B": ("bench-motion.html", "B: dashboard + camera tile"),
}
WARMUP = 5.0  # seconds between "running" and the start of a measuring window
FPS = 30
TARGETS = {
    "cpu_a": 0.10, "cpu_b": 0.5, "fps_b": 15.0,
    "startup_fmp4": 1.5, "startup_hls": 3.0,
    "latency_hls": 2.5, "latency_fmp4": 1.0, "server_ms": 250.0,
}


class Context:
    """One benchmark run: its options, the shared servers, and every figure for --json."""

    def __init__(self, seconds: float, sections: list[str], workdir: Path, pages_url: str):
        self.seconds = seconds
        self.sections = sections
        self.workdir = workdir
        self.pages_url = pages_url
        self.pagecast: Pagecast | None = None  # the section's own pagecast serve, so its warnings reach the summary
        self.results: dict[str, Any] = {}
        #: What lives for the whole run (the Home Assistant of the sections that need one).
        self.stack = contextlib.AsyncExitStack()
        self.home_assistant: HomeAssistant | None = None

    def page(self, name: str) -> str:
        return f"{self.pages_url}/{name}"

    @staticmethod
    def out(text: str = "") -> None:
        print(text, flush=True)

    @staticmethod
    def progress(text: str) -> None:
        print(f"  · {text}", file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    from ..lowlevel.groups import flatten

    leaves = [e for e in flatten(exc) if not isinstance(e, trio.Cancelled)] or [exc]
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves[:3])
