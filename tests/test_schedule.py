"""The begin-frame schedule and the idle policy, as tables: times in, slots and steps out."""

from __future__ import annotations

import pytest

from pagecast.core.schedule import (
    DEEP_IDLE_AFTER,
    DEEP_IDLE_STEP,
    IDLE_AFTER,
    IDLE_STEP,
    Pace,
    deep_idle_step,
    frame_time_ms,
    next_slot,
    read_back,
    step_after,
)

# A quarter second is exact in binary, so slot arithmetic compares exactly.
Q = 0.25


@pytest.mark.parametrize(
    "deadline, now, step, slot",
    [
        (10.0, 10.0, 1, 10.0 + Q),  # on time: the next slot
        (10.0, 10.0 + Q / 2, 1, 10.0 + Q),  # early for it: sleep until it
        (10.0, 10.0 + Q + Q / 2, 1, 10.0 + Q),  # half an interval late: tick at once, no slot skipped
        (10.0, 10.0 + 2 * Q, 1, 10.0 + Q),  # a whole interval late: still that slot
        (10.0, 10.0 + Q + 2.5 * Q, 1, 10.0 + 3 * Q),  # 2.5 intervals late: two slots skipped, the latest begun
        (10.0, 10.0 + Q + 100.1 * Q, 1, 10.0 + 101 * Q),  # suspended for a while: no burst to catch up
        (10.0, 10.0, 3, 10.0 + 3 * Q),  # idle: every third slot
        (10.0, 10.0 + 3 * Q + 2.5 * Q, 3, 10.0 + 5 * Q),  # idle and late: back on the grid, not on the idle grid
    ],
)
def test_the_next_slot_is_on_the_grid_and_slots_we_are_late_for_are_skipped(deadline, now, step, slot):
    assert next_slot(deadline, now, Q, step) == slot


@pytest.mark.parametrize("fps", [1, 10, 24, 30, 60])
def test_slots_stay_on_the_fps_grid_whatever_the_wake_up_jitter(fps):
    interval = 1.0 / fps
    deadline = start = 1000.0
    # Late by 0..3 intervals in turn, by amounts that are not multiples of the interval.
    for lateness in [0.0, 0.3, 1.7, 0.01, 2.99, 0.5] * 10:
        deadline = next_slot(deadline, deadline + interval * (1 + lateness), interval)
        slots = (deadline - start) / interval
        assert slots == pytest.approx(round(slots), abs=1e-6)


@pytest.mark.parametrize(
    "damaged, quiet_since, now, result",
    [
        (True, 0.0, 5.0, (1, 5.0)),  # a change: full rate, quiet from now
        (False, 5.0, 5.0 + IDLE_AFTER / 2, (1, 5.0)),  # briefly quiet: still full rate
        (False, 5.0, 5.0 + IDLE_AFTER, (IDLE_STEP, 5.0)),  # quiet for IDLE_AFTER: idle step
        (False, 5.0, 5.0 + DEEP_IDLE_AFTER - 0.1, (IDLE_STEP, 5.0)),
        (False, 5.0, 5.0 + DEEP_IDLE_AFTER, (DEEP_IDLE_STEP, 5.0)),  # still for a while: the deep idle step
        (False, 5.0, 500.0, (DEEP_IDLE_STEP, 5.0)),
        (True, 5.0, 500.0, (1, 500.0)),  # a change after a long idle restores the full rate at once
    ],
)
def test_the_page_is_ticked_less_often_once_it_has_been_quiet(damaged, quiet_since, now, result):
    assert step_after(damaged, quiet_since, now) == result


@pytest.mark.parametrize(
    "damaged, quiet_since, now, result",
    [
        (True, 0.0, 5.0, (2, 5.0)),  # a changing page: every busy step, not every slot
        (False, 5.0, 5.0 + IDLE_AFTER / 2, (2, 5.0)),
        (False, 5.0, 5.0 + IDLE_AFTER, (IDLE_STEP, 5.0)),  # quiet: the idle step
    ],
)
def test_a_capped_capture_rate_ticks_a_changing_page_every_busy_step(damaged, quiet_since, now, result):
    assert step_after(damaged, quiet_since, now, busy_step=2) == result


def test_an_idle_page_is_never_ticked_faster_than_a_busy_one():
    assert step_after(False, 0.0, 1.0, busy_step=5) == (5, 0.0)
    assert step_after(False, 0.0, 10.0, busy_step=12) == (12, 0.0)


def test_a_page_changing_every_second_never_reaches_the_deep_idle_step():
    pace, now = Pace(1, 0.0), 0.0
    steps = set()
    while now < 30.0:
        now += pace.step / 30
        pace = pace.after(now % 1.0 < pace.step / 30, True, now)
        steps.add(pace.step)
    assert steps == {1, IDLE_STEP}


@pytest.mark.parametrize("fps, step", [(30, 9), (60, 18), (15, 4), (10, 3), (5, 3), (1, 3)])
def test_a_still_page_is_ticked_every_three_tenths_of_a_second_whatever_the_rate(fps, step):
    assert deep_idle_step(fps) == step


@pytest.mark.parametrize(
    "pending, idle, mode",
    [
        (True, False, True),  # a change still to capture: read back whatever this tick draws
        (True, True, True),
        (False, False, False),  # the page is changing: read back if this tick drew a change
        (False, True, None),  # quiet: a change now is read back on the next tick, after its burst
    ],
)
def test_the_first_change_after_a_quiet_spell_is_read_back_one_tick_later(pending, idle, mode):
    assert read_back(pending, idle) is mode


def _captures(drawn: set[int], busy_step: int, ticks: int = 60) -> list[int]:
    """The ticks (0.1 s apart, every ``busy_step``-th slot) whose picture is read back, as the
    renderer's loop does it with ``Pace``; ``drawn`` are the ticks where the page drew a change."""
    pace, captures = Pace(IDLE_STEP, 0.0), []
    for tick in range(1, ticks):
        mode = pace.capture()
        damaged = tick in drawn
        captured = mode is True or (mode is False and damaged)
        if captured:
            captures.append(tick)
        pace = pace.after(damaged, captured, tick * 0.1, busy_step=busy_step, idle_after=0.2)
    return captures


def test_a_burst_of_changes_after_a_quiet_spell_is_one_capture():
    """The page reacts to one event in two drawn frames, then later once more."""
    assert _captures({10, 11, 20}, busy_step=1) == [11, 21]


@pytest.mark.parametrize("busy_step", [IDLE_STEP, IDLE_STEP + 3])
def test_a_low_capture_rate_still_waits_out_a_burst(busy_step):
    """With a busy step as long as the idle one (capture_fps 10 or less at 30 fps), quiet is
    told by time, not by the step: the burst is still one picture."""
    assert _captures({10, 11, 40}, busy_step=busy_step) == [11, 41]


def test_the_idle_policy_is_tunable():
    assert step_after(False, 0.0, 1.0, idle_after=2.0, idle_step=5) == (1, 0.0)
    assert step_after(False, 0.0, 2.0, idle_after=2.0, idle_step=5) == (5, 0.0)


def ticks(changes_at: set[int], count: int, idle_step: int = IDLE_STEP) -> list[int]:
    """Slot numbers (at 1/Q fps) ticked by the renderer's loop on a page that changes in the given
    slots, drawing instantly: a change shows at the first tick on or after its slot."""
    deadline, quiet_since, step = 0.0, 0.0, 1
    pending, out = set(changes_at), []
    while len(out) < count:
        deadline = next_slot(deadline, deadline, Q, step)
        slot = round(deadline / Q)
        out.append(slot)
        damaged = any(s <= slot for s in pending)
        pending = {s for s in pending if s > slot}
        step, quiet_since = step_after(damaged, quiet_since, deadline, idle_after=2 * Q, idle_step=idle_step)
    return out


def test_a_quiet_page_drops_to_the_idle_rate_and_a_change_restores_the_full_rate():
    # Changes in slots 1..3, quiet, a change in slot 12 (seen at the next idle tick), quiet again.
    assert ticks({1, 2, 3, 12}, 12, idle_step=3) == [1, 2, 3, 4, 5, 8, 11, 14, 15, 16, 19, 22]


def test_an_idle_page_is_seen_changing_at_most_idle_step_slots_late():
    for change in range(10, 10 + IDLE_STEP):
        seen = next(s for s in ticks({change}, 20) if s >= change)
        assert seen - change < IDLE_STEP


def test_frame_times_are_chromiums_monotonic_milliseconds():
    assert frame_time_ms(1005.5, 1000.0) == 5500.0
    assert frame_time_ms(2.0, -3.0) == 5000.0
