"""Restart budgets and backoff, as tables: failure times in, restart or give up out."""

from __future__ import annotations

import pytest

from pagecast.core.policy import ENCODER_RESTARTS, Backoff, RestartBudget, gave_up


@pytest.mark.parametrize(
    "failures, restarts",
    [
        ([0.0], [True]),
        ([0.0, 1.0, 2.0], [True, True, True]),
        ([0.0, 1.0, 2.0, 3.0], [True, True, True, False]),  # a fourth within the minute: give up
        ([0.0, 1.0, 2.0, 60.5], [True, True, True, True]),  # the first has left the window
        ([0.0, 30.0, 59.9, 60.0], [True, True, True, True]),  # at 60.0 the first has just left the window
        ([0.0, 30.0, 59.9, 59.95], [True, True, True, False]),  # ... at 59.95 it has not
        ([0.0, 100.0, 200.0, 300.0, 400.0], [True] * 5),  # a crash every 100 s runs forever
    ],
)
def test_encoder_restarts_at_most_three_a_minute(failures, restarts):
    history: tuple[float, ...] = ()
    got = []
    for t in failures:
        verdict = ENCODER_RESTARTS.decide(history, t)
        got.append(verdict.restart)
        history = verdict.history
    assert got == restarts


def test_a_verdict_counts_the_failures_inside_the_window_and_waits_the_backoff():
    budget = RestartBudget(limit=2, window=10.0, backoff=0.5)
    verdict = budget.decide((1.0, 2.0, 9.0), now=12.5)
    assert (verdict.restart, verdict.wait, verdict.history, verdict.failures) == (True, 0.5, (9.0, 12.5), 2)
    assert budget.decide(verdict.history, 13.0).restart is False


@pytest.mark.parametrize(
    "history, now, wait",
    [
        ((), 0.0, 0.0),  # the first failure: at once, the picture is frozen meanwhile
        ((0.0,), 1.0, 0.5),
        ((0.0, 1.0), 2.0, 1.0),  # doubling: no tight loop for a child that keeps failing ...
        ((0.0, 1.0, 2.0), 3.0, 1.0),  # ... up to the cap: each wait is a frozen picture
        ((0.0, 1.0, 2.0), 400.0, 0.0),  # the others have left the window: at once again
    ],
)
def test_the_first_restart_in_a_window_is_at_once_then_the_wait_doubles(history, now, wait):
    verdict = RestartBudget(limit=5, window=300.0, backoff=0.5).decide(history, now)
    assert verdict.restart and verdict.wait == wait


@pytest.mark.parametrize("attempt, delay", [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (50, 30.0), (-1, 1.0)])
def test_reconnect_waits_double_up_to_the_cap(attempt, delay):
    assert Backoff(first=1.0, cap=30.0).delay(attempt) == delay


@pytest.mark.parametrize(
    "lost_at, now, limit, expected",
    [(0.0, 59.0, 60.0, False), (0.0, 60.0, 60.0, False), (0.0, 60.1, 60.0, True), (0.0, 1e6, None, False)],
)
def test_a_device_away_longer_than_the_limit_is_given_up(lost_at, now, limit, expected):
    assert gave_up(lost_at, now, limit) is expected


@pytest.mark.parametrize(
    "current, wanted, result",
    [
        ("starting", "live", "live"),
        ("starting", "failed", "failed"),
        ("live", "stopping", "stopping"),
        ("stopping", "live", "stopping"),  # a stream that went live while the stop was under way
        ("stopping", "stopped", "stopped"),
        ("failed", "stopped", "failed"),  # the error is the last word
        ("stopped", "failed", "stopped"),
        ("stopped", "starting", "stopped"),
    ],
)
def test_a_session_state_moves_only_forward_and_its_first_ending_wins(current, wanted, result):
    from pagecast.core.lifecycle import State, move

    assert move(State(current), State(wanted)) is State(result)


@pytest.mark.parametrize(
    "events, now, hung",
    [
        ([], 100.0, False),  # nothing went in: nothing owed
        ([("in", 0.0)], 4.9, False),
        ([("in", 0.0)], 5.1, True),
        ([("in", 0.0), ("in", 4.0)], 5.1, True),  # the first unanswered input counts
        ([("in", 0.0), ("out", 1.0)], 100.0, False),
        ([("in", 0.0), ("out", 1.0), ("in", 2.0)], 6.9, False),
        ([("in", 0.0), ("out", 1.0), ("in", 2.0)], 7.1, True),
    ],
)
def test_a_child_that_takes_input_and_answers_nothing_for_the_bound_is_hung(events, now, hung):
    from pagecast.core.policy import Answering

    state = Answering()
    for kind, t in events:
        state = state.fed(t) if kind == "in" else state.answered()
    assert state.hung(now, bound=5.0) is hung


MB = 1 << 20


@pytest.mark.parametrize(
    "limits, age, memory, failures, since_failure, why",
    [
        ({}, 1e9, 1 << 40, 0, None, None),  # both limits off: never
        ({"max_age": 86400.0}, 86399.0, None, 0, None, None),
        ({"max_age": 86400.0}, 86400.0, None, 0, None, "running for 86400 s"),
        ({"max_memory": 1500 * MB}, 3600.0, 1499 * MB, 0, None, None),
        ({"max_memory": 1500 * MB}, 3600.0, 1500 * MB, 0, None, "memory 1500 MB reached the limit of 1500 MB"),
        ({"max_memory": 1500 * MB}, 3600.0, None, 0, None, None),  # not measured (yet): no verdict
        ({"max_memory": 1500 * MB}, 60.0, 2000 * MB, 0, None, None),  # big from the start: not before memory_min_age
        ({"max_memory": 1500 * MB}, 120.0, 2000 * MB, 0, None, "memory 2000 MB"),
        ({"max_memory": 1500 * MB, "max_age": 100.0}, 200.0, 2000 * MB, 0, None, "memory"),  # memory named first
        ({"max_age": 100.0}, 200.0, None, 1, 29.0, None),  # the last try failed 29 s ago: wait 30 s
        ({"max_age": 100.0}, 200.0, None, 1, 30.0, "running for 200 s"),
        ({"max_age": 100.0}, 200.0, None, 3, 119.0, None),  # the third failure in a row: wait 120 s
        ({"max_age": 100.0}, 200.0, None, 3, 120.0, "running for 200 s"),
        ({"max_age": 100.0}, 1e6, None, 9, 599.0, None),  # ... at most 10 minutes
        ({"max_age": 100.0}, 1e6, None, 9, 600.0, "running for"),
    ],
)
def test_a_chromium_is_recycled_when_too_old_or_too_big_and_a_failed_replacement_backs_off(limits, age, memory, failures, since_failure, why):
    from pagecast.core.policy import Recycling

    kwargs = {"failures": failures} | ({"since_failure": since_failure} if since_failure is not None else {})
    reason = Recycling(**limits).due(age, memory, **kwargs)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason, reason
