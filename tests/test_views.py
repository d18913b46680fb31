"""What /status shows of a session's children, from what the session knows: tables."""

from __future__ import annotations

import pytest

from pagecast.core.views import ChromiumFacts, encoder_answer, encoder_child, renderer_child

MB = 1 << 20


@pytest.mark.parametrize("ended, facts, shown", [
    (False, ChromiumFacts(41, 100.0, 1_800_000_000.0, 118.0, 300 * MB), ("running", 41, "2027-01-15T08:00:00.000Z", 20.0, 300.0, 2.0)),
    (True, ChromiumFacts(41, 100.0, 1_800_000_000.0, 118.0, 300 * MB), ("stopped", 41, "2027-01-15T08:00:00.000Z", 20.0, 300.0, 2.0)),
    (False, ChromiumFacts(None, 100.0, 1_800_000_000.0, 118.0, None), ("running", None, None, None, None, 2.0)),  # between two Chromiums
    (False, None, ("running", None, None, None, None, None)),
])
def test_the_renderer_as_status_shows_it(ended, facts, shown):
    child = renderer_child(ended=ended, state="running", chromium=facts, now=120.0, restarts=1, recycles=2, recycle_failures=0, last_recycle=None)
    assert (child.state, child.pid, child.started, child.age_s, child.memory_mb, child.last_frame_s) == shown
    assert (child.restarts, child.recycles) == (1, 2)


@pytest.mark.parametrize("ended, state, pid, output_at, shown", [
    (False, "running", 7, 119.5, ("running", 0.5)),
    (False, "restarting", None, 110.0, ("restarting", 10.0)),
    (False, "running", None, None, ("starting", None)),
    (True, "running", 7, 119.5, ("stopped", 0.5)),
])
def test_the_encoder_as_status_shows_it(ended, state, pid, output_at, shown):
    child = encoder_child(ended=ended, state=state, pid=pid, backend="libx264", restarts=0, output_at=output_at, now=120.0)
    assert (child.state, child.last_output_s) == shown


def test_a_fallback_is_said_once_with_its_reason():
    assert encoder_answer("libx264", None).fallbacks == 0
    fell = encoder_answer("libx264", {"from": "h264_vaapi", "reason": "device lost"})
    assert (fell.fell_back_from, fell.reason, fell.fallbacks) == ("h264_vaapi", "device lost", 1)
