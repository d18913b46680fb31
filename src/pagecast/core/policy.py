"""Restart and retry policies: pure functions of what happened and when (times are arguments),
so "restart or give up" and "how long to wait" are tested by tables, not by waiting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """What a budget says about one more failure: restart (after ``wait`` seconds) or give up.
    ``history`` is the failure times to keep for the next decision (this one included)."""

    restart: bool
    wait: float
    history: tuple[float, ...]

    @property
    def failures(self) -> int:
        """Failures inside the window, this one included."""
        return len(self.history)


@dataclass(frozen=True)
class RestartBudget:
    """At most ``limit`` restarts within ``window`` seconds; the next failure inside the window
    gives up. The first failure in the window is restarted at once (the stream is frozen
    meanwhile); each further one waits ``backoff`` seconds, doubling up to ``cap``, so a
    child that keeps failing is not restarted in a tight loop, yet every wait is a frozen
    picture: the limit, not the wait, is what ends a crash loop."""

    limit: int
    window: float
    backoff: float = 0.0
    cap: float = 1.0

    def decide(self, history: Sequence[float], now: float) -> Verdict:
        recent = tuple(t for t in history if now - t < self.window) + (now,)
        if len(recent) > self.limit:
            return Verdict(False, 0.0, recent)
        wait = 0.0 if len(recent) == 1 else min(self.backoff * 2 ** (len(recent) - 2), max(self.cap, self.backoff))
        return Verdict(True, wait, recent)


#: An encoder that dies is restarted inside its session, by default at most 3 times a minute
#: (PAGECAST_ENCODER_RESTARTS in PAGECAST_ENCODER_RESTART_WINDOW).
ENCODER_RESTARTS = RestartBudget(limit=3, window=60.0, backoff=0.5)
#: With keep_on, a TV whose player stopped on an error gets the stream again, at most 3 times a minute.
RECAST_BUDGET = RestartBudget(limit=3, window=60.0)


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first`` up to ``cap``: attempt 0 waits ``first``."""

    first: float = 1.0
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.first * self.factor ** max(0, attempt), self.cap)


MB = 1 << 20


@dataclass(frozen=True)
class Recycling:
    """When a healthy but long-running Chromium is replaced, make-before-break: once it holds
    ``max_memory`` bytes or has run ``max_age`` seconds (0: never, for that reason). Pages
    leak over days (dashboards that never reload); a fresh browser is the only cure.

    Memory counts only from ``memory_min_age`` seconds on: a page that is simply that big
    when freshly loaded would otherwise be replaced at every check. A replacement that could
    not load is retried after ``retry``'s doubling wait, the old one streaming meanwhile."""

    max_memory: int = 0
    max_age: float = 0.0
    memory_min_age: float = 120.0
    retry: Backoff = Backoff(first=30.0, cap=600.0)

    def due(self, age: float, memory: int | None, *, failures: int = 0, since_failure: float = math.inf) -> str | None:
        """Why a Chromium ``age`` seconds old holding ``memory`` bytes (None: unknown) is to
        be replaced now, or None. ``failures``: replacements that failed in a row since the
        last that worked, the last ``since_failure`` seconds ago."""
        if failures and since_failure < self.retry.delay(failures - 1):
            return None
        if self.max_memory > 0 and memory is not None and memory >= self.max_memory and age >= self.memory_min_age:
            return (
                f"memory {memory / MB:.0f} MB reached the limit of {self.max_memory / MB:.0f} MB "
                f"(PAGECAST_RENDERER_MAX_MEMORY_MB) after {age:.0f} s"
            )
        if self.max_age > 0 and age >= self.max_age:
            return f"running for {age:.0f} s reached the limit of {self.max_age:g} s (PAGECAST_RENDERER_MAX_AGE)"
        return None


def gave_up(lost_at: float, now: float, limit: float | None) -> bool:
    """Whether a device lost at ``lost_at`` has been away too long (``limit`` None: never)."""
    return limit is not None and now - lost_at > limit


@dataclass(frozen=True)
class Answering:
    """Whether a child that should answer input with output still does: ``waiting_since`` is
    when the first input it has not answered yet went in (None: all answered). A child that
    is SIGSTOPped, or stuck, takes input (until its pipe is full) and answers nothing."""

    waiting_since: float | None = None

    def fed(self, now: float) -> "Answering":
        return self if self.waiting_since is not None else Answering(now)

    def answered(self) -> "Answering":
        return Answering()

    def hung(self, now: float, bound: float) -> bool:
        return self.waiting_since is not None and now - self.waiting_since > bound
