"""A session's supervision with fake parts under a fake clock: restart budgets, the first
Chromium's one retry, recycling and its backoff, the hardware encoder's fallback, durations,
screens joining and leaving, and why a session ended — each in milliseconds of real time.
tests/test_cast.py, test_recycle.py, test_hwenc.py and test_supervise.py prove the same with
the real parts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import trio

from pagecast.core.device import Device
from pagecast.core.errors import CastError, Conflict, DeviceEnded, EncodeError, RenderError
from pagecast.core.lifecycle import State
from pagecast.core.request import CastOptions, parse_start
from pagecast.core.screen import Handover
from pagecast.core.settings import Settings
from pagecast.session.actor import Parts, Session
from pagecast.session.encoder_probe import EncoderChoice
from pagecast.session.render import Browser
from pagecast.session.supervisor import Supervisor

SETTINGS = Settings(renderer_check_interval=5.0, renderer_max_age=0.0, renderer_max_memory_mb=0)
TV = {name: Device(name, f"00000000-0000-0000-0000-00000000000{i}", "Virtual", "pagecast", f"10.0.0.{i}") for i, name in enumerate(("Hall", "Kitchen", "Bedroom"), 1)}


# -- fake parts ------------------------------------------------------------------------------


class FakeBrowser(Browser):
    """A Chromium's handle with no Chromium: its memory is what a test says."""

    memory_bytes: int | None = None

    async def memory(self) -> int | None:
        return self.memory_bytes


class Script:
    """What the fake parts do, and what they saw: each Chromium (``renders``) and FFmpeg
    (``encodes``) pops its fate from a list (None: runs until stopped)."""

    def __init__(self, *, renders=(), encodes=(), screens=None):
        self.render_fates = list(renders)
        self.encode_fates = list(encodes)
        self.screen_fates = dict(screens or {})
        self.chromiums: list[FakeBrowser] = []
        self.backends: list[str] = []
        self.watchers: dict[str, FakeWatcher] = {}
        self.live = trio.Event()

    def parts(self) -> Parts:
        return Parts(render=self.render, browser=self.browser, encode=self.encode, screen=self.screen, publisher=FakePublisher)

    def browser(self, stats: dict) -> FakeBrowser:
        browser = FakeBrowser(stats)
        self.chromiums.append(browser)
        return browser

    async def render(self, page, settings, outlet, *, task_status, browser) -> None:
        fate = self.render_fates.pop(0) if self.render_fates else None
        browser.pid, browser.launched = len(self.chromiums), trio.current_time()
        if isinstance(fate, RenderError) and fate.kind in ("no_picture", "load"):
            raise fate  # before its first picture
        task_status.started()
        if isinstance(fate, tuple):  # (seconds, error): fails after it was shown
            await trio.sleep(fate[0])
            raise fate[1]
        await trio.sleep_forever()

    async def encode(self, spec, ffmpeg, frames, publisher, *, stats, backend, hang_timeout, resume_at) -> None:
        self.backends.append(backend)
        fate = self.encode_fates.pop(0) if self.encode_fates else None
        publisher.go_live()
        if fate is not None:
            await trio.sleep(fate[0])
            raise fate[1]
        await trio.sleep_forever()

    def screen(self, device, options, settings, stream, *, session_id, inherited=None):
        watcher = FakeWatcher(device, options, self.screen_fates.get(device.name), inherited)
        self.watchers[device.name] = watcher
        return watcher


class FakePublisher:
    def __init__(self, **options):
        self.stats = {"segments_produced": 0, "viewers": 0}
        self._live = trio.Event()
        self.ended = False

    def go_live(self) -> None:
        self._live.set()

    def begin_generation(self) -> None:
        pass

    def generation_end(self) -> float | None:
        return None

    async def wait_live(self) -> None:
        await self._live.wait()

    wait_keyframe = wait_live

    def end(self) -> None:
        self.ended = True

    def release(self) -> None:
        pass


@dataclass(eq=False)
class FakeWatcher:
    """A TV: connects (or refuses), plays once the stream is live, then meets its fate:
    ``("remote", t)`` the TV's stop after t s, ``("refuse", t)`` a CastError, ``"busy"`` a
    Conflict at connect; None plays until cancelled, then gives the TV back."""

    device: Device
    options: CastOptions
    fate: Any
    inherited: Handover | None
    playing: trio.Event = field(default_factory=trio.Event)
    state: str = "connecting"
    reconnects: int = 0
    seconds_to_playing: float | None = None
    device_stop: str | None = None
    screen: Any = None
    given_back: str | None = None
    handed_over: bool = False

    async def run(self, wait_stream, task_status=trio.TASK_STATUS_IGNORED) -> None:
        if self.fate == "busy":
            raise Conflict(f"{self.device.name} is showing YouTube; not interrupting it (if_idle)")
        task_status.started()
        try:
            await wait_stream()
            self.state = "playing"
            self.playing.set()
            if isinstance(self.fate, tuple):
                kind, after = self.fate
                await trio.sleep(after)
                if kind == "remote":
                    self.device_stop = "stopped on the TV"
                    raise DeviceEnded("stopped on the TV")
                raise CastError(f"{self.device.name} refused the stream: LOAD_FAILED")
            await trio.sleep_forever()
        finally:
            if self.device_stop is None and not self.handed_over:
                self.given_back = "back to the idle screen"
            self.state = "done"

    def hand_over(self) -> Handover:
        self.handed_over = True
        return Handover(None, False)

    def status(self) -> dict:
        return {
            "device": self.device.name, "uuid": self.device.uuid, "address": self.device.host, "state": self.state,
            "player_state": "PLAYING" if self.state == "playing" else None, "seconds_to_playing": self.seconds_to_playing,
            "casts": 1, "reconnects": self.reconnects, "stalls": 0, "reloads": 0, "keep_on": self.options.keep_on,
            "quiet": self.options.quiet, "woke_from_standby": False, "lost": None, "stopped_by_device": self.device_stop,
            "previous": None, "given_back": self.given_back,
        }


# -- helpers -----------------------------------------------------------------------------------


def request(**body):
    return parse_start({"url": "http://ha.local/lovelace/0", "device": None, **body}, SETTINGS, {})


async def run_session(nursery, script: Script, *, devices=(), settings=SETTINGS, encoders=None, **body) -> Session:
    session = Session(request(**({"device": [d.name for d in devices]} if devices else {}), **body), settings, devices=devices,
                      parts=script.parts(), encoders=encoders)
    await nursery.start(session.run)
    return session


async def ended(session: Session) -> Session:
    with trio.fail_after(3600):
        await session.wait_ended()
    return session


# -- the renderer ------------------------------------------------------------------------------


async def test_a_chromium_that_keeps_crashing_is_restarted_within_its_budget_then_fails_the_session(autojump_clock, nursery):
    crash = RenderError("Chromium exited unexpectedly")
    script = Script(renders=[(10.0, crash)] * 8)
    session = await run_session(nursery, script)
    await ended(session)
    assert session.state is State.FAILED
    assert session.error == f"the renderer failed 6 times in 300 s; last: {crash}"
    assert session.restarts["renderer"] == 5 and len(script.chromiums) == 6


async def test_a_first_chromium_without_a_picture_gets_one_more_try(autojump_clock, nursery):
    script = Script(renders=[RenderError("no picture", kind="no_picture")])
    session = await run_session(nursery, script)
    await session.wait_ready()
    assert session.state is State.LIVE and len(script.chromiums) == 2 and session.restarts["renderer"] == 0
    session.stop("done")
    await ended(session)


async def test_a_page_that_cannot_load_fails_the_start_without_a_retry(autojump_clock, nursery):
    script = Script(renders=[RenderError("could not load http://ha.local/lovelace/0", kind="load")])
    session = await run_session(nursery, script)
    await ended(session)
    assert session.state is State.FAILED and "could not load" in session.error and len(script.chromiums) == 1


async def test_an_old_chromium_is_replaced_make_before_break_and_a_failed_replacement_waits_30_s(autojump_clock, nursery):
    settings = replace(SETTINGS, renderer_max_age=100.0)
    script = Script(renders=[None, RenderError("no picture", kind="load"), None])
    session = await run_session(nursery, script, settings=settings)
    start = trio.current_time()
    while session.recycle_failures == 0:
        await trio.sleep(1)
    failed_at = trio.current_time() - start
    while session.recycles == 0:
        await trio.sleep(1)
    assert 100 <= failed_at <= 106 and trio.current_time() - start - failed_at >= 30
    assert session.restarts["renderer"] == 0 and len(script.chromiums) == 3
    session.stop("done")
    await ended(session)


# -- the encoder -------------------------------------------------------------------------------


async def test_a_hardware_encoder_that_dies_is_replaced_by_libx264_in_the_same_session(autojump_clock, nursery):
    script = Script(encodes=[(20.0, EncodeError("h264_vaapi: device lost"))])
    session = await run_session(nursery, script, encoders=EncoderChoice.unprobed("h264_vaapi"))
    while len(script.backends) < 2:
        await trio.sleep(1)
    assert script.backends == ["h264_vaapi", "libx264"] and session.restarts["encoder"] == 0
    encoder = session.status().encoder
    assert encoder.fell_back_from == "h264_vaapi" and encoder.backend == "libx264"
    session.stop("done")
    await ended(session)


async def test_an_ffmpeg_that_keeps_dying_fails_the_session_past_its_budget(autojump_clock, nursery):
    script = Script(encodes=[(5.0, EncodeError("ffmpeg exited 1"))] * 4)
    session = await run_session(nursery, script)
    await ended(session)
    assert session.state is State.FAILED and session.error == "the encoder failed 4 times in 60 s; last: ffmpeg exited 1"
    assert session.restarts["encoder"] == 3


# -- durations, screens and endings ------------------------------------------------------------------


async def test_a_stream_only_session_ends_when_its_duration_does(autojump_clock, nursery):
    session = await run_session(nursery, Script(), duration=30)
    began = trio.current_time()
    await ended(session)
    assert trio.current_time() - began == pytest.approx(30, abs=0.1)
    assert session.state is State.STOPPED and session.stop_reason == "duration of 30 s ended"


async def test_each_screen_keeps_its_own_duration_and_the_session_ends_with_its_last(autojump_clock, nursery):
    script = Script()
    session = await run_session(nursery, script, devices=[TV["Hall"]], duration=60)
    await session.add_screen(TV["Kitchen"], CastOptions(), 120)
    began = trio.current_time()
    while session.screen_on(TV["Hall"].uuid) is not None:
        await trio.sleep(1)
    assert trio.current_time() - began == pytest.approx(60, abs=1.5) and session.state is State.LIVE
    await ended(session)
    assert trio.current_time() - began == pytest.approx(120, abs=1.5)
    assert session.stop_reason == "duration of 120 s ended"
    assert [s.ended for s in session.screens] == ["duration of 60 s ended", "duration of 120 s ended"]
    assert all(w.given_back == "back to the idle screen" for w in script.watchers.values())


async def test_a_tv_stopped_on_its_remote_leaves_alone_and_the_last_one_stops_the_session(autojump_clock, nursery):
    script = Script(screens={"Kitchen": ("remote", 10.0), "Hall": ("remote", 20.0)})
    session = await run_session(nursery, script, devices=[TV["Hall"], TV["Kitchen"], TV["Bedroom"]])
    await trio.sleep(15)
    assert [s.device.name for s in session.active_screens()] == ["Hall", "Bedroom"] and session.state is State.LIVE
    session.remove_screen(TV["Bedroom"].uuid, "removed by API")
    await trio.sleep(1)
    assert session.state is State.LIVE and script.watchers["Bedroom"].given_back == "back to the idle screen"
    await ended(session)
    assert session.state is State.STOPPED and session.stop_reason == "stopped on the TV"
    assert script.watchers["Hall"].given_back is None  # a person decided: the TV is left as it is


async def test_a_tv_that_refuses_the_stream_fails_the_session_only_when_it_was_the_last(autojump_clock, nursery):
    script = Script(screens={"Hall": ("refuse", 5.0), "Kitchen": ("refuse", 8.0)})
    session = await run_session(nursery, script, devices=[TV["Hall"], TV["Kitchen"]])
    await trio.sleep(6)
    assert session.state is State.LIVE and session.screens[0].error.endswith("LOAD_FAILED")
    await ended(session)
    assert session.state is State.FAILED and session.error == "Kitchen refused the stream: LOAD_FAILED"


async def test_a_session_started_stream_only_streams_on_when_its_screens_leave(autojump_clock, nursery):
    script = Script(screens={"Hall": ("remote", 5.0)})
    session = await run_session(nursery, script)
    await session.add_screen(TV["Hall"], CastOptions(), None)
    await trio.sleep(10)
    assert session.state is State.LIVE and session.active_screens() == []
    session.stop("stopped by API")
    await ended(session)


async def test_a_busy_tv_fails_the_start_and_leaves_nothing_on_the_others(autojump_clock, nursery):
    script = Script(screens={"Kitchen": "busy"})
    session = Session(request(device=["Hall", "Kitchen"]), SETTINGS, devices=[TV["Hall"], TV["Kitchen"]], parts=script.parts())
    with pytest.raises(Conflict, match="if_idle"):
        await nursery.start(session.run)
    assert session.state is State.FAILED and script.watchers["Hall"].given_back == "back to the idle screen"
    assert script.chromiums == []  # no page was loaded


class Directory:
    def __init__(self):
        self.devices = dict(TV)

    async def resolve(self, spec):
        return self.devices[spec]

    def knows(self, spec):
        return spec in self.devices


async def test_a_start_of_the_same_page_joins_and_another_page_takes_the_tv_over(autojump_clock, nursery):
    script = Script()
    supervisor = Supervisor(SETTINGS, Directory(), parts=script.parts())
    await nursery.start(supervisor.run)
    first = await supervisor.start(request(device="Hall"))
    joined = await supervisor.start(request(device=["Kitchen", "Bedroom"], volume=0.2))
    assert joined.joined and joined.session is first.session and len(first.session.active_screens()) == 3
    assert script.watchers["Kitchen"].options.volume == 0.2
    other = await supervisor.start(request(device="Kitchen", url="http://ha.local/lovelace/1"))
    assert not other.joined and other.session is not first.session
    assert script.watchers["Kitchen"].inherited is not None and first.session.screen_on(TV["Kitchen"].uuid) is None
    assert [s.id for s in supervisor.stop(device="Hall")] == [first.session.id] and first.session.state is State.LIVE
    supervisor.stop(device="Bedroom")
    await ended(first.session)
    assert first.session.stop_reason == "stopped by API" and other.session.state is State.LIVE
    await supervisor.shutdown()
