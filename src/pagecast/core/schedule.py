"""When to tick a begin-frame-controlled page: a steady grid of slots at the stream's rate,
thinned out while the page is idle. Pure: times are arguments (any one clock, in seconds), so
the renderer and the benchmark drive Chromium by the same schedule and tests need no waiting."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Seconds without a change after which a page is ticked only every IDLE_STEP-th slot.
IDLE_AFTER = 0.2
IDLE_STEP = 3
#: Seconds without a change after which a page is still: ticked every DEEP_IDLE_STEP-th slot
#: (0.3 s at 30 fps). Pages that change every second or so never get there.
DEEP_IDLE_AFTER = 3.0
DEEP_IDLE_STEP = 9
#: The longest a still page's tick waits (seconds), whatever the rate: a change is in the
#: stream within this plus one busy step and its drawing, inside the half second a change may take.
DEEP_IDLE_PERIOD = 0.3


def deep_idle_step(fps: int) -> int:
    """A still page's step at ``fps``: one tick every DEEP_IDLE_PERIOD, never fewer slots than IDLE_STEP."""
    return max(IDLE_STEP, int(DEEP_IDLE_PERIOD * fps + 1e-9))


def next_slot(deadline: float, now: float, interval: float, step: int = 1) -> float:
    """The slot to tick at after the one at ``deadline``: ``step`` slots on, or, if that is
    more than one ``interval`` past already, the latest slot of the grid that has begun (the
    ones in between are skipped, never caught up on in a burst). Slots stay on the grid, so
    frame times are exact multiples of ``interval`` apart whatever the wake-up jitter."""
    deadline += interval * step
    if now - deadline > interval:
        deadline += math.floor((now - deadline) / interval) * interval
    return deadline


def step_after(
    damaged: bool, quiet_since: float, now: float, *, busy_step: int = 1, idle_after: float = IDLE_AFTER, idle_step: int = IDLE_STEP,
    deep_after: float = DEEP_IDLE_AFTER, deep_step: int = DEEP_IDLE_STEP,
) -> tuple[int, float]:
    """``(step, quiet_since)`` after a tick at ``now``: every ``busy_step``-th slot while the page
    changes (the capture rate's cap: a drawn change is a captured frame), every ``idle_step``-th
    once it has not changed for ``idle_after`` seconds, every ``deep_step``-th once it has been
    still for ``deep_after``. A dashboard is idle most of the time and each tick costs Chromium
    and us a round trip; the first change restores the busy rate, so an idle page is seen
    changing at most ``idle_step`` (a still one ``deep_step``) slots late."""
    if damaged:
        return busy_step, now
    quiet = now - quiet_since
    if quiet >= deep_after:
        return max(deep_step, idle_step, busy_step), quiet_since
    return (max(idle_step, busy_step) if quiet >= idle_after else busy_step), quiet_since


def read_back(pending: bool, idle: bool) -> bool | None:
    """Whether the next tick reads its picture back: ``True`` always (a change is still to be
    captured), ``False`` if it drew a change, ``None`` never. A change that ends a quiet spell
    (``idle``) is read back one tick later, not at once: a page reacts to one event in a
    burst of frames (a dashboard's cards redraw one after another, within tens of
    milliseconds), and one picture after the burst shows it all. Costs one busy step of
    delay for the first change after a quiet spell; none while the page keeps changing."""
    if pending:
        return True
    return None if idle else False


@dataclass(frozen=True)
class Pace:
    """Where a streaming page's schedule stands between two ticks: the step to the next one,
    when the page last changed, whether it was quiet at the last tick (``idle``), and whether
    a change is still to be captured (``pending``)."""

    step: int
    quiet_since: float
    idle: bool = False
    pending: bool = False

    def capture(self) -> bool | None:
        """What the next tick reads back (``read_back``)."""
        return read_back(self.pending, self.idle)

    def after(self, damaged: bool, captured: bool, now: float, *, busy_step: int = 1,
              idle_after: float = IDLE_AFTER, idle_step: int = IDLE_STEP, deep_step: int = DEEP_IDLE_STEP) -> "Pace":
        """The pace after a tick at ``now`` that drew a change (``damaged``) or not, and read
        one back (``captured``) or not: a change not read back is captured on the next tick."""
        step, quiet_since = step_after(damaged, self.quiet_since, now, busy_step=busy_step, idle_after=idle_after, idle_step=idle_step,
                                       deep_step=deep_step)
        return Pace(step, quiet_since, now - quiet_since >= idle_after, (damaged or self.pending) and not captured)


def frame_time_ms(slot: float, clock_offset: float) -> float:
    """Chromium's ``frameTimeTicks`` for ``slot``: its CLOCK_MONOTONIC in milliseconds, where
    ``clock_offset`` is our clock minus ``time.monotonic()``."""
    return (slot - clock_offset) * 1000.0
