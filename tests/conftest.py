"""Shared fixtures. Every test fails loudly if it leaves a child process or thread behind."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

IGNORED_THREAD_PREFIXES = ("Trio thread", "trio-", "asyncio_")


def _children() -> dict[int, str]:
    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out[p.pid] = " ".join(p.cmdline()[:3]) or p.name()
        except psutil.Error:
            pass
    return out


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.name.startswith(IGNORED_THREAD_PREFIXES)}


@pytest.fixture(autouse=True)
def no_leaks(request):
    """A test must end with no new child process and no new thread of ours alive."""
    before_procs = set(_children())
    before_threads = _threads()
    yield
    deadline = time.monotonic() + 1.0
    leaked = {}
    while time.monotonic() < deadline:
        leaked = {pid: cmd for pid, cmd in _children().items() if pid not in before_procs}
        if not leaked:
            break
        time.sleep(0.05)
    for pid in leaked:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    assert not leaked, f"test left child processes running: {leaked}"
    leaked_threads = _threads() - before_threads
    assert not leaked_threads, f"test left threads running: {sorted(leaked_threads)}"
