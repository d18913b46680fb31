"""A long-running session's Chromium is replaced make-before-break: the new one loads the page
while the old one streams, takes over once it has a picture, and the stream never notices."""

from __future__ import annotations

import psutil
import pytest
import trio
import trio.testing

from helpers import drained, session, wait_for
from pagecast.lowlevel.proc import alive, descendants
from pagecast.core.page import Frame
from pagecast.session.handoff import FrameSwitch


def _switch_with_one_chromium(nursery, capacity: int):
    """A running switch to an encoder channel of ``capacity``, its first outlet active and
    one frame (captured at 1.0) sent through it."""
    send, recv = trio.open_memory_channel[Frame](capacity)
    switch = FrameSwitch(send)
    stats: dict = {}
    nursery.start_soon(switch.run)
    old = switch.outlet(stats)
    switch.take_over(old)
    old.send_nowait(Frame(b"old", 1.0, 0))
    return switch, recv, stats, old


async def test_only_the_active_chromiums_frames_reach_the_encoder_and_never_out_of_order(nursery):
    switch, recv, stats, old = _switch_with_one_chromium(nursery, capacity=100)
    await trio.testing.wait_all_tasks_blocked()
    new = switch.outlet(stats)
    new.send_nowait(Frame(b"new", 1.5, 0))  # loading: held, not handed on
    old.send_nowait(Frame(b"old", 2.0, 1))
    await trio.testing.wait_all_tasks_blocked()
    new.send_nowait(Frame(b"new", 1.8, 1))  # newer than what it held, older than the old one's last
    switch.take_over(new)
    old.send_nowait(Frame(b"old", 3.0, 2))  # retired: never handed on
    await trio.testing.wait_all_tasks_blocked()
    new.send_nowait(Frame(b"new", 2.1, 2))
    await trio.testing.wait_all_tasks_blocked()
    got = drained(recv)
    assert [(f.jpeg, f.index) for f in got] == [(b"old", 0), (b"old", 1), (b"new", 1), (b"new", 2)]
    times = [f.captured_at for f in got]
    assert times == sorted(times) and len(set(times)) == len(times), times
    assert stats.get("frames_dropped", 0) == 0  # what a loading Chromium replaced was never due


async def test_a_frame_the_encoder_has_not_taken_yet_gives_way_to_a_newer_one_and_to_the_new_chromium(nursery):
    """The encoder is behind (nothing receives): the frame waiting to go is taken back for a
    newer one (counted as dropped), and at a take-over for the new Chromium's."""
    switch, recv, stats, old = _switch_with_one_chromium(nursery, capacity=0)
    await trio.testing.wait_all_tasks_blocked()
    old.send_nowait(Frame(b"old", 2.0, 1))
    await trio.testing.wait_all_tasks_blocked()
    assert stats["frames_dropped"] == 1
    new = switch.outlet(stats)
    new.send_nowait(Frame(b"new", 1.5, 0))
    switch.take_over(new)
    await trio.testing.wait_all_tasks_blocked()
    frame = await recv.receive()
    assert (frame.jpeg, frame.captured_at) == (b"new", 1.5)  # nothing of the old one went on first
    assert stats["frames_dropped"] == 1  # a retired Chromium's frame is not a dropped one


@pytest.mark.settings(renderer_max_age=2.0, renderer_check_interval=0.2)
async def test_an_old_chromium_is_replaced_make_before_break_and_the_picture_never_freezes(client, pages):
    """With a tiny max age, Chromium is replaced every couple of seconds: the session stays
    live, each replacement is a new browser whose predecessor's whole process tree goes away,
    the encoder gets new frames of the (every-second) changing page throughout from one FFmpeg
    (no restart, no discontinuity), and none of it counts as a restart."""
    sid = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()["id"]
    status = await session(client, sid)
    first_pid = status["children"]["renderer"]["pid"]
    first_tree = [psutil.Process(first_pid), *descendants(first_pid)]
    encoder_pid = status["children"]["encoder"]["pid"]
    pids = [first_pid]
    last_new, last_change, worst = None, trio.current_time(), 0.0
    t0 = trio.current_time()
    with trio.fail_after(15):
        while trio.current_time() - t0 < 7.0:
            status = await session(client, sid)
            assert status["state"] == "live", status["error"]
            renderer = status["children"]["renderer"]
            if renderer["pid"] is not None and renderer["pid"] != pids[-1]:
                pids.append(renderer["pid"])
            new_frames = status["frames"]["encoded"] - status["frames"]["repeated"]
            now = trio.current_time()
            if new_frames != last_new:
                worst = max(worst, now - last_change)
                last_new, last_change = new_frames, now
            await trio.sleep(0.1)
        worst = max(worst, trio.current_time() - last_change)
    playlist = (await client.get(f"/streams/{sid}/index.m3u8")).text
    renderer, encoder = status["children"]["renderer"], status["children"]["encoder"]
    assert renderer["recycles"] >= 2 and len(pids) >= 3, (renderer, pids)
    assert renderer["state"] in ("running", "recycling") and renderer["recycle_failures"] == 0
    assert "PAGECAST_RENDERER_MAX_AGE" in renderer["last_recycle"]["reason"]
    assert [e["kind"] for e in status["restart_log"]] == ["recycle"] * min(10, renderer["recycles"])
    assert status["restarts"] == {"renderer": 0, "encoder": 0} and status["last_restart"] is None
    # One FFmpeg throughout, fed a new picture at least every change of the page (1 s).
    assert encoder["pid"] == encoder_pid and encoder["state"] == "running" and encoder["last_output_s"] < 1.5
    assert "#EXT-X-DISCONTINUITY" not in playlist
    assert worst < 1.8, f"no new frame reached the encoder for {worst:.2f} s"
    await wait_for(lambda: alive(first_tree), lambda left: not left, timeout=5)
    await client.post("/stop", json={"id": sid})


@pytest.mark.settings(renderer_max_age=1.0, renderer_check_interval=0.2)
async def test_a_replacement_that_cannot_load_is_given_up_and_the_old_chromium_streams_on(client, pages, request):
    """The page answers only once (``/once/…``): the new Chromium gets HTTP 500, so the one
    streaming stays, the failure is counted and logged, and it is not a restart."""
    url = f"{pages}/once/{request.node.name}-{trio.current_time()}"
    sid = (await client.post("/start?wait=1", json={"url": url, "quality": "720p"})).json()["id"]
    pid = (await session(client, sid))["children"]["renderer"]["pid"]
    status = await wait_for(lambda: session(client, sid), lambda d: d["children"]["renderer"]["recycle_failures"] >= 1, timeout=10)
    # The 30 s wait before the next try is tests/test_session.py's (a fake clock).
    renderer = status["children"]["renderer"]
    assert status["state"] == "live" and renderer["state"] == "running" and renderer["pid"] == pid
    assert renderer["recycles"] == 0 and renderer["recycle_failures"] == 1
    assert status["restarts"] == {"renderer": 0, "encoder": 0}
    [entry] = status["restart_log"]
    assert entry["kind"] == "recycle_failed" and "500" in entry["reason"], entry
    assert renderer["last_frame_s"] < 1.5  # still drawing the page
    await client.post("/stop", json={"id": sid})
