"""What a Cast TV's statuses mean for a session, as tables: receiver and media statuses in, "the TV
ended it", "re-cast", "fail" or "nothing" out; screens after a reconnect in, resume / re-cast /
end out; the screen from before in, the steps that give it back out. No TV, no clock."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from pagecast.core.policy import Backoff
from pagecast.core.screen import (
    DMR_APP_ID, DeviceStop, Fail, GiveBack, Interrupted, Launch, Load, Media, OurCast, ReceiverView, Recast, Resume, Screen,
    SetVolume, StopApp, Stream, after_reconnect, give_back_plan, interrupted_by, judge_media, judge_receiver,
    left_our_app, mute_before_launch, reconnect_step, should_give_back, unstick,
)

YOUTUBE = "233637DE"
BACKDROP = "E8C28D3C"
STREAMS = "http://10.0.0.2:8000/streams/"
OUR_URL = STREAMS + "abc/index.m3u8"
THEIRS = "http://nas/movie.m3u8"

CAST = OurCast(streams=STREAMS, app_session="app-1", media_session=7, standby_seen=False)
NOT_LAUNCHED = OurCast(streams=STREAMS)


def view(app_id=DMR_APP_ID, session="app-1", standby=False, name="Default Media Receiver", active_input=True) -> ReceiverView:
    return ReceiverView(app_id=app_id, session_id=session, standby=standby, active_input=active_input, display_name=name)


IDLE = view(None, None, name=None)
BACKDROP_VIEW = view(BACKDROP, "b-1", name="Backdrop")
YOUTUBE_VIEW = view(YOUTUBE, "yt-1", name="YouTube")


def media(state="PLAYING", reason=None, session=7, content_id=OUR_URL, stream_type="LIVE", at=0.0, title="Dashboard") -> Media:
    return Media(session, state, reason, content_id, "application/vnd.apple.mpegurl", stream_type, at, title)


def screen(app_id=None, name=None, m=None, session="app-1", standby=False, active_input=True, volume=0.5) -> Screen:
    return Screen(app_id=app_id, app_name=name, app_session=session, standby=standby, active_input=active_input, volume=volume, muted=False, media=m)


IDLE_SCREEN = screen()
DMR = "Default Media Receiver"


# --- receiver statuses ----------------------------------------------------------------------


def judge_all(views, ours=CAST):
    out = []
    for v in views:
        verdict = judge_receiver(v, ours)
        ours = verdict.ours
        out.append(verdict.ended.reason if verdict.ended else None)
    return out


@pytest.mark.parametrize("seen, views, meanings", [
    (False, [view()], [None]),
    (False, [IDLE], ["casting was stopped on the TV (our app was closed)"]),
    (False, [BACKDROP_VIEW], ["casting was stopped on the TV (our app was closed)"]),
    (False, [YOUTUBE_VIEW], ["another app took over the TV: YouTube"]),
    (False, [view(YOUTUBE, "yt-1", name=None)], [f"another app took over the TV: {YOUTUBE}"]),
    (False, [view(session="app-2")], ["another app took over the TV: Default Media Receiver"]),  # relaunched by another sender
    (False, [view(session=None)], [None]),  # a status without a session id is not another session
    (False, [view(), view(standby=True)], [None, "the TV went to standby"]),
    (False, [view(standby=True)], ["the TV went to standby"]),
    (True, [view(standby=True), view(standby=True)], [None, None]),  # in standby when we cast: no change
    (None, [view(standby=True)], [None]),  # unknown before: no change
    (True, [view(standby=False), view(standby=True)], [None, "the TV went to standby"]),
    (False, [None, view()], [None, None]),
])
def test_a_receiver_status_after_our_launch_says_whether_the_tv_ended_the_session(seen, views, meanings):
    assert judge_all(views, replace(CAST, standby_seen=seen)) == meanings


@pytest.mark.parametrize("v", [IDLE, YOUTUBE_VIEW, view(standby=True)])
def test_before_our_launch_no_receiver_status_ends_anything_nor_is_its_standby_remembered(v):
    verdict = judge_receiver(v, NOT_LAUNCHED)
    assert verdict.ended is None and verdict.ours == NOT_LAUNCHED


@pytest.mark.parametrize("v, reason", [
    (view(), None),
    (IDLE, "the TV left our app before the stream was live (now at its idle screen)"),
    (None, "the TV left our app before the stream was live (now at its idle screen)"),
    (BACKDROP_VIEW, "the TV left our app before the stream was live (now at its idle screen)"),
    (YOUTUBE_VIEW, "the TV left our app before the stream was live (now at YouTube)"),
    (view(session="app-2"), "the TV left our app before the stream was live (now at Default Media Receiver)"),
])
def test_a_tv_that_left_our_app_before_the_load_ends_the_session(v, reason):
    got = left_our_app(v, "app-1")
    assert (got.reason if got else None) == reason


# --- media statuses -------------------------------------------------------------------------


def follow(statuses, *, keep_on=False, ours=CAST, player_state=None):
    """Feeds (time, media) statuses like the watcher: returns the player states shown, the
    stalls, whether it played, and what each status asked for."""
    recasts: tuple[float, ...] = ()
    stalls, played, thens = 0, False, []
    for now, m in statuses:
        v = judge_media(m, ours, player_state, keep_on=keep_on, recasts=recasts, now=now, device="TV")
        if not v.mine:
            thens.append("not ours")
            continue
        stalls += v.stalled
        played = played or v.playing
        player_state = v.player_state
        if isinstance(v.then, Recast):
            recasts = v.then.recasts
        thens.append(v.then)
    return player_state, stalls, played, thens


def test_buffering_after_playing_counts_a_stall_and_buffering_before_it_does_not():
    statuses = [(0, media("BUFFERING")), (1, media("PLAYING")), (5, media("BUFFERING")), (6, media("PLAYING"))]
    assert follow(statuses) == ("PLAYING", 1, True, [None] * 4)


@pytest.mark.parametrize("status", [media("IDLE"), media("UNKNOWN")])
def test_idle_without_a_reason_and_unknown_are_a_receiver_still_loading_and_change_nothing(status):
    assert follow([(0, status)], player_state="BUFFERING") == ("BUFFERING", 0, False, [None])


@pytest.mark.parametrize("status", [media(session=8), media(session=None)])
def test_another_media_sessions_status_is_not_ours(status):
    assert follow([(0, status)], player_state="PLAYING") == ("PLAYING", 0, False, ["not ours"])


def test_nothing_is_ours_before_the_load_or_while_re_casting():
    assert follow([(0, media("IDLE", "CANCELLED"))], ours=replace(CAST, media_session=None))[3] == ["not ours"]


@pytest.mark.parametrize("reason, keep_on, then", [
    ("CANCELLED", False, DeviceStop("stopped on the TV (remote or another sender sent STOP)")),
    ("CANCELLED", True, DeviceStop("stopped on the TV (remote or another sender sent STOP)")),  # a person's decision: no re-cast
    ("INTERRUPTED", True, Interrupted()),
    ("ERROR", False, Fail("TV stopped playing the stream: ERROR (set keep_on to re-cast)")),
    ("FINISHED", False, Fail("TV stopped playing the stream: FINISHED (set keep_on to re-cast)")),
    ("ERROR", True, Recast((0.0,))),
    ("FINISHED", True, Recast((0.0,))),
])
def test_media_ending_is_a_person_s_stop_an_interruption_or_a_player_error(reason, keep_on, then):
    assert follow([(0.0, media("IDLE", reason))], keep_on=keep_on) == ("IDLE", 0, False, [then])


@pytest.mark.parametrize("times, outcome", [
    ([0.0, 1.0, 2.0], ["recast", "recast", "recast"]),
    ([0.0, 1.0, 2.0, 3.0], ["recast", "recast", "recast", "TV stopped playing the stream 4 times in 60 s (last: ERROR)"]),
    ([0.0, 1.0, 2.0, 60.0], ["recast"] * 4),  # the first error has left the minute
    ([0.0, 30.0, 59.0, 59.5], ["recast", "recast", "recast", "TV stopped playing the stream 4 times in 60 s (last: ERROR)"]),
    ([0.0, 100.0, 200.0, 300.0, 400.0], ["recast"] * 5),
])
def test_with_keep_on_player_errors_are_re_cast_at_most_three_times_a_minute(times, outcome):
    _, _, _, thens = follow([(t, media("IDLE", "ERROR")) for t in times], keep_on=True)
    assert ["recast" if isinstance(t, Recast) else t.message for t in thens] == outcome


@pytest.mark.parametrize("v, reason", [
    (YOUTUBE_VIEW, "another app took over the TV: YouTube"),
    (view(), "another sender loaded other media on the TV"),
    (view(session="app-2"), "another sender loaded other media on the TV"),
    (BACKDROP_VIEW, "another sender loaded other media on the TV"),
    (IDLE, "another sender loaded other media on the TV"),
    (None, "another sender loaded other media on the TV"),
])
def test_an_interruption_is_an_app_taking_over_if_the_receiver_names_one_else_another_sender(v, reason):
    assert interrupted_by(v) == DeviceStop(reason)


# --- losing the TV --------------------------------------------------------------------------

BACKOFF = Backoff(first=1.0, cap=4.0)


@pytest.mark.parametrize("attempts_at, keep_on, steps", [
    ([0.0, 1.0, 3.0, 7.0, 11.0], True, [1.0, 2.0, 4.0, 4.0, 4.0]),  # doubling up to the cap
    ([0.0, 1.0, 3.0, 7.0, 11.0, 1000.0], True, [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]),  # keep_on never gives up
    ([0.0, 1.0, 3.0, 7.0, 11.0], False, [1.0, 2.0, 4.0, 4.0, "TV unreachable for 10 s (connection lost)"]),
    ([0.0, 10.0], False, [1.0, 2.0]),  # at the limit, not past it: one more try
])
def test_a_lost_tv_is_retried_with_growing_waits_and_without_keep_on_given_up(attempts_at, keep_on, steps):
    got = []
    for attempt, now in enumerate(attempts_at):
        step = reconnect_step(attempt, 0.0, now, keep_on=keep_on, give_up=10.0, backoff=BACKOFF, device="TV", lost_reason="connection lost")
        got.append(step.reason if isinstance(step, DeviceStop) else step)
    assert got == steps


OURS_PLAYING = screen(DMR_APP_ID, DMR, media("PLAYING"))
OURS_BUFFERING = screen(DMR_APP_ID, DMR, media("BUFFERING"))
OUR_APP_IDLE = screen(DMR_APP_ID, DMR, media("IDLE", "ERROR"))
OUR_APP_EMPTY = screen(DMR_APP_ID, DMR)
OUR_STREAM_RELOADED = screen(DMR_APP_ID, DMR, media("PLAYING", session=9), session="app-2")  # a restarted TV
THEIR_MOVIE = screen(DMR_APP_ID, DMR, media("PLAYING", session=3, content_id=THEIRS, title="Movie"), session="app-3")
YOUTUBE_SCREEN = screen(YOUTUBE, "YouTube", session="yt-1")
DROPPED = "the TV dropped the stream while unreachable (connection lost); now at "


@pytest.mark.parametrize("s, keep_on, casts, then", [
    (OURS_PLAYING, False, 1, Resume("playing")),
    (OURS_BUFFERING, False, 1, Resume("casting")),
    (IDLE_SCREEN, True, 1, Recast()),
    (OUR_APP_IDLE, True, 1, Recast()),
    (OUR_APP_EMPTY, True, 1, Recast()),
    (OUR_STREAM_RELOADED, True, 1, Recast()),
    (screen(BACKDROP, "Backdrop"), True, 1, Recast()),
    (IDLE_SCREEN, False, 0, Recast()),  # lost before the first LOAD: the session has not cast yet
    (IDLE_SCREEN, False, 1, DeviceStop(DROPPED + "its idle screen")),
    (OUR_APP_IDLE, False, 1, DeviceStop(DROPPED + DMR)),
    (YOUTUBE_SCREEN, True, 1, DeviceStop("the TV now shows YouTube; not interrupting it")),
    (YOUTUBE_SCREEN, False, 0, DeviceStop("the TV now shows YouTube; not interrupting it")),
    (THEIR_MOVIE, True, 1, DeviceStop("the TV now shows 'Movie' (playing) in Default Media Receiver; not interrupting it")),
])
def test_after_a_reconnect_our_stream_resumes_an_idle_screen_is_re_cast_and_a_persons_screen_ends_the_session(s, keep_on, casts, then):
    assert after_reconnect(s, CAST, keep_on=keep_on, casts=casts, lost_reason="connection lost") == then


# --- giving the screen back -----------------------------------------------------------------

LEAVING = view()  # our app, in the session we launched, when the session ends
RELAUNCHED = "relaunched YouTube; what it was playing cannot be restored by a Cast sender"
STANDBY_NOTE = "the TV was in standby before; Cast cannot switch it off again"


@pytest.mark.parametrize("now, previous, volume_set, plan", [
    (LEAVING, None, False, GiveBack((StopApp(),), "back to the idle screen")),
    (LEAVING, IDLE_SCREEN, False, GiveBack((StopApp(),), "back to the idle screen")),
    (LEAVING, screen(BACKDROP, "Backdrop"), False, GiveBack((StopApp(),), "back to the idle screen")),
    (LEAVING, OUR_APP_IDLE, False, GiveBack((StopApp(),), "back to the idle screen")),
    (LEAVING, OURS_PLAYING, False, GiveBack((StopApp(),), "back to the idle screen")),  # a session we replaced: ours
    (LEAVING, THEIR_MOVIE, False, GiveBack(
        (Load(Stream(THEIRS, "application/vnd.apple.mpegurl", "Movie"), None),), "reloaded 'Movie' at its live position")),
    (LEAVING, screen(DMR_APP_ID, DMR, media("PAUSED", content_id="http://nas/film.mp4", stream_type="BUFFERED", at=123.4, title=None)), False,
     GiveBack((Load(Stream("http://nas/film.mp4", "application/vnd.apple.mpegurl", ""), 123.4),), "reloaded 'http://nas/film.mp4' at 123 s")),
    (LEAVING, screen(DMR_APP_ID, DMR, media("PLAYING", content_id=None)), False,
     GiveBack((Launch(DMR_APP_ID),), "relaunched Default Media Receiver; what it was playing cannot be restored by a Cast sender")),
    (LEAVING, YOUTUBE_SCREEN, False, GiveBack((Launch(YOUTUBE),), RELAUNCHED)),
    (LEAVING, screen(YOUTUBE, "YouTube", volume=0.4), True, GiveBack((SetVolume(0.4), Launch(YOUTUBE)), RELAUNCHED + "; volume back to 0.40")),
    (LEAVING, None, True, GiveBack((StopApp(),), "back to the idle screen")),  # no volume known to go back to
    (LEAVING, screen(standby=True, active_input=False), False, GiveBack((StopApp(),), "back to the idle screen; " + STANDBY_NOTE)),
    (LEAVING, screen(standby=True, active_input=False, volume=0.25), True,
     GiveBack((SetVolume(0.25), StopApp()), "back to the idle screen; volume back to 0.25; " + STANDBY_NOTE)),
    (LEAVING, screen(standby=True, active_input=True), False, GiveBack((StopApp(),), "back to the idle screen")),  # on, showing another input
    (YOUTUBE_VIEW, YOUTUBE_SCREEN, True, GiveBack((), "left as it is: the TV already shows YouTube")),
    (YOUTUBE_VIEW, IDLE_SCREEN, False, GiveBack((), "left as it is: the TV already shows YouTube")),
    (IDLE, YOUTUBE_SCREEN, True, GiveBack((), "left as it is: the TV already shows its idle screen")),
    (BACKDROP_VIEW, YOUTUBE_SCREEN, False, GiveBack((), "left as it is: the TV already shows its idle screen")),
    (None, YOUTUBE_SCREEN, False, GiveBack((), "left as it is: the TV already shows its idle screen")),
    (view(session="app-2"), YOUTUBE_SCREEN, False, GiveBack((), "left as it is: the TV already shows Default Media Receiver")),
])
def test_the_screen_from_before_is_given_back_only_over_our_own_app(now, previous, volume_set, plan):
    assert give_back_plan(now, previous, CAST, volume_set) == plan


def test_a_session_that_never_launched_gives_back_over_the_receiver_it_inherited():
    assert give_back_plan(view(session="inherited"), YOUTUBE_SCREEN, NOT_LAUNCHED, True).actions == (SetVolume(0.5), Launch(YOUTUBE))


@pytest.mark.parametrize("took_screen, ended_by_device, handed_over, give_back", [
    (True, False, False, True),
    (False, False, False, False),  # never launched, loaded nor set the volume: nothing to give back
    (True, True, False, False),  # the TV ended us: a person decided what it shows
    (True, False, True, False),  # a new session holds the TV now
    (True, True, True, False),
])
def test_only_a_screen_we_took_and_still_hold_is_given_back(took_screen, ended_by_device, handed_over, give_back):
    assert should_give_back(took_screen, ended_by_device, handed_over) is give_back


# --- reading pychromecast's objects ---------------------------------------------------------


def test_a_receiver_status_is_copied_by_attribute_and_a_missing_one_is_none():
    status = SimpleNamespace(app_id=YOUTUBE, session_id="yt-1", is_stand_by=False, is_active_input=None, display_name="YouTube", volume_level=0.3)
    assert ReceiverView.of(status) == view(YOUTUBE, "yt-1", name="YouTube", active_input=None)
    assert ReceiverView.of(None) is None


def test_our_streams_are_any_of_this_services_sessions_and_nothing_else():
    ours = OurCast.of_stream(Stream.for_session(STREAMS + "xyz/live.mp4", "fmp4", "t"))
    assert ours.owns(media(content_id=STREAMS + "other/index.m3u8"))
    assert not ours.owns(media(content_id=THEIRS)) and not ours.owns(media(content_id=None))


@pytest.mark.parametrize(
    "since, now, limit, recasts, expected",
    [
        (None, 100.0, 10.0, (), None),  # not buffering
        (95.0, 100.0, 10.0, (), None),  # buffering, not for long
        (90.0, 100.0, 10.0, (), (100.0,)),  # stuck for the limit: load it again
        (50.0, 100.0, 0.0, (), None),  # 0: never
        (80.0, 100.0, 10.0, (50.0, 60.0, 70.0), None),  # three re-casts this minute already: leave it be
        (80.0, 100.0, 10.0, (10.0, 20.0, 30.0), (100.0,)),  # those have left the window
    ],
)
def test_a_tv_stuck_buffering_our_stream_gets_it_loaded_again_within_the_recast_budget(since, now, limit, recasts, expected):
    verdict = unstick(since, now, limit=limit, recasts=recasts)
    assert (None if verdict is None else verdict.recasts) == expected


@pytest.mark.parametrize("quiet, before, mutes", [
    (True, None, True),  # not looked at yet: mute
    (True, "sound on", True),
    (True, "muted by a person", False),  # their mute is not ours to lift later
    (False, "sound on", False),
])
def test_a_quiet_start_mutes_only_a_tv_that_has_its_sound_on(quiet, before, mutes):
    shown = None if before is None else replace(screen(), muted=before == "muted by a person")
    assert mute_before_launch(quiet, shown) is mutes
