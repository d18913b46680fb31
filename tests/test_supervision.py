"""What a session does after a child fails, and how its ending is read: tables, in milliseconds."""

from __future__ import annotations

import pytest

from pagecast.core.errors import CastError, Conflict, DeviceEnded, EncodeError, RenderError
from pagecast.core.policy import RestartBudget
from pagecast.core.supervision import (
    Ending, Fallback, GiveUp, Restart, Retry, after_encode_failure, after_render_failure, encoder_state, ending, resume_at,
)

BUDGET = RestartBudget(limit=2, window=60.0, backoff=0.5)


@pytest.mark.parametrize("kind, shown, retried, failures, now, expected", [
    ("no_picture", False, False, (), 0.0, Retry("empty; trying a new Chromium once")),
    ("no_picture", False, True, (), 0.0, GiveUp("empty")),
    ("hang", False, False, (), 0.0, Retry("empty; trying a new Chromium once")),  # hung while loading: a new one may not
    ("hang", False, True, (), 0.0, GiveUp("empty")),
    ("login", True, False, (), 10.0, GiveUp("empty")),  # a dashboard signed out later: no Chromium fixes that
    ("crash", False, False, (), 0.0, GiveUp("empty")),  # a wrong URL is the session's failure
    ("crash", True, False, (), 10.0, Restart(0.0, (10.0,))),  # the first restart is at once
    ("hang", True, False, (10.0,), 20.0, Restart(0.5, (10.0, 20.0))),
    ("crash", True, False, (10.0, 20.0), 30.0, GiveUp("the renderer failed 3 times in 60 s; last: empty")),
    ("crash", True, False, (10.0, 20.0), 75.0, Restart(0.5, (20.0, 75.0))),  # the oldest left the window
])
def test_after_a_chromium_fails(kind, shown, retried, failures, now, expected):
    assert after_render_failure("empty", kind, shown=shown, retried=retried, budget=BUDGET, failures=failures, now=now) == expected


@pytest.mark.parametrize("backend, failures, expected", [
    ("h264_vaapi", (1.0, 2.0), Fallback("libx264", "h264_vaapi replaced by libx264: died")),  # outside the budget
    ("libx264", (), Restart(0.0, (5.0,))),
    ("libx264", (1.0, 2.0), GiveUp("the encoder failed 3 times in 60 s; last: died")),
])
def test_after_an_ffmpeg_fails(backend, failures, expected):
    assert after_encode_failure("died", backend=backend, budget=BUDGET, failures=failures, now=5.0) == expected


@pytest.mark.parametrize("mode, end, expected", [
    ("hls", 12.5, 1012.5),  # a playlist goes on where the video ended
    ("hls", None, None),  # nothing published yet
    ("fmp4", 12.5, None),  # a progressive stream goes on from now
])
def test_a_restarted_encoder_resumes(mode, end, expected):
    assert resume_at(mode, 1000.0, end) == expected


@pytest.mark.parametrize("ended, state, running, shown", [
    (True, "running", True, "stopped"),
    (False, "restarting", False, "restarting"),
    (False, "running", True, "running"),
    (False, "running", False, "starting"),
])
def test_the_encoder_state_status_shows(ended, state, running, shown):
    assert encoder_state(ended=ended, state=state, running=running) == shown



@pytest.mark.parametrize("leaves, expected", [
    ([Conflict("TV busy")], Ending("refused", "TV busy", True)),
    ([RenderError("no page")], Ending("failed", "no page")),
    ([DeviceEnded("stopped on the TV"), EncodeError("late")], Ending("failed", "late")),  # a failure outweighs the TV
    ([DeviceEnded("stopped on the TV")], Ending("stopped", "stopped on the TV")),
    ([CastError("LOAD_FAILED")], Ending("failed", "LOAD_FAILED")),
    ([], Ending("stopped")),  # cancelled by its stop or duration: the reason given then stays
    ([KeyboardInterrupt()], Ending("stopped", None, True)),
])
def test_how_a_session_ended(leaves, expected):
    assert ending(leaves) == expected


def test_a_bug_fails_only_its_session_and_is_kept_for_the_log():
    bug = ZeroDivisionError("x")
    end = ending([bug])
    assert (end.outcome, end.message, end.bug) == ("failed", "internal error: ZeroDivisionError('x')", bug)
