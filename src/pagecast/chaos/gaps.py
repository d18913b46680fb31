"""What the harness concludes from samples, with no clock and no I/O of its own: freezes (a
value that should keep changing did not, for a while), stalls, the windows a fault excuses,
and percentiles. Times are passed in, so the tests are tables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

Window = tuple[float, float]

#: Two ages that put a stretch's start this close are the same stretch (answers take time).
SAME_START = 0.1


@dataclass
class Gaps:
    """Stretches of at least ``threshold`` seconds during which a sampled value did not change
    (a TV player's decoded frames, pagecast's captured frames): each one a freeze."""

    threshold: float = 0.5
    last_value: Any = None
    last_change: float | None = None
    gaps: list[Window] = field(default_factory=list)

    def observe(self, now: float, value: Any) -> None:
        if self.last_change is None:
            self.last_value, self.last_change = value, now
            return
        if value != self.last_value:
            if now - self.last_change >= self.threshold:
                self.gaps.append((self.last_change, now))
            self.last_value, self.last_change = value, now

    def observe_age(self, now: float, age: float | None) -> None:
        """The other way to see a freeze: the sampled party says how old its newest change is
        (pagecast's ``last_frame_s``), so a late answer does not look like a freeze. Samples of
        one stretch (the same start, give or take ``SAME_START``) extend it."""
        if age is None or age < self.threshold:
            return
        start = now - age
        if self.gaps and abs(self.gaps[-1][0] - start) <= SAME_START:
            self.gaps[-1] = (self.gaps[-1][0], max(self.gaps[-1][1], now))
        else:
            self.gaps.append((start, now))

    def pause(self) -> None:
        """Stop counting (the value is meant to stand still now, e.g. the session was stopped)."""
        self.last_value, self.last_change = None, None

    def close(self, now: float) -> None:
        """The stretch still open at the end counts too."""
        if self.last_change is not None and now - self.last_change >= self.threshold:
            self.gaps.append((self.last_change, now))
        self.pause()

    def longest(self, *, within: Sequence[Window] | None = None, outside: Sequence[Window] = ()) -> float:
        """The longest gap overlapping one of ``within`` (all if None) and none of ``outside``."""
        chosen = [g for g in self.gaps if (within is None or any(overlaps(g, w) for w in within)) and not any(overlaps(g, w) for w in outside)]
        return max((b - a for a, b in chosen), default=0.0)


def overlaps(a: Window, b: Window) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class Stalls:
    """When a TV's stall counter rose. The counter is per media session (it restarts at 0
    with each LOAD), so a drop is a new media session, not a stall."""

    last: int | None = None
    times: list[float] = field(default_factory=list)

    def observe(self, now: float, stalls: int) -> None:
        if self.last is not None and stalls > self.last:
            self.times.extend([now] * (stalls - self.last))
        self.last = stalls

    def count(self, *, outside: Sequence[Window] = ()) -> int:
        return sum(1 for t in self.times if not any(a <= t <= b for a, b in outside))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def growth(before: float | None, after: float | None) -> float | None:
    """Relative growth, e.g. 0.05 for +5 %; None when unknown."""
    if not before or after is None:
        return None
    return after / before - 1
