"""The command line: JSON logs carry structured fields; the virtual TV has its own flags."""

from __future__ import annotations

import json
import logging

from pagecast.cli import JsonFormatter, main


def test_json_log_lines_carry_the_structured_fields_of_an_event():
    record = logging.LogRecord("pagecast.cast", logging.INFO, __file__, 1, "session %s: %s", ("abc", "stopped on the TV"), None)
    record.fields = {"event": "device_stop", "session": "abc", "device": "Living Room TV", "reason": "stopped on the TV"}
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "session abc: stopped on the TV" and line["event"] == "device_stop" and line["device"] == "Living Room TV"


def test_pagecast_virtual_tv_help_is_the_virtual_tvs_own(capsys):
    try:
        main(["virtual-tv", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "usage: pagecast virtual-tv" in capsys.readouterr().out


# ---- the client commands: a running service driven from the shell -----------------------------

import io  # noqa: E402

import pytest  # noqa: E402
import trio  # noqa: E402

from pagecast.client import parse_duration  # noqa: E402


async def pagecast(*argv: str) -> tuple[int, str, str]:
    """``pagecast ARGV`` against a running service, in a thread (the client blocks; the service
    must keep running): exit status, standard output, standard error."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        import contextlib

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return main(list(argv))
            except SystemExit as exc:
                return int(exc.code or 0)

    code = await trio.to_thread.run_sync(run)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("text, seconds", [("60", 60), ("60s", 60), ("5m", 300), ("1.5h", 5400), ("90 sec", 90)])
def test_durations_are_seconds_minutes_or_hours(text, seconds):
    assert parse_duration(text) == seconds


async def test_start_wait_status_and_stop_from_the_shell(service, pages):
    server = f"--server=http://127.0.0.1:{service.port}"
    code, out, err = await pagecast("start", f"{pages}/dashboard.html", "--stream-only", "--quality", "720p", "--for", "5m", "--wait", server)
    assert code == 0, err
    sid = out.split()[1].rstrip(":")
    assert f"/streams/{sid}/index.m3u8" in out and "live (live after" in out  # the progress line
    code, out, _ = await pagecast("status", server)
    assert code == 0 and sid in out and "live" in out and "/dashboard.html" in out
    code, out, _ = await pagecast("stop", sid, server)
    assert code == 0 and out.strip() == f"stopped 1 session(s): {sid}"
    with trio.fail_after(15):
        while service.supervisor.active():
            await trio.sleep(0.1)
    code, out, _ = await pagecast("status", server)
    assert "no sessions running" in out
    code, out, _ = await pagecast("status", "--all", server)
    assert sid in out and "stopped" in out


async def test_the_servers_reason_is_shown_and_nothing_starts(service):
    server = f"--server=http://127.0.0.1:{service.port}"
    code, out, err = await pagecast("start", "ftp://example/", "--stream-only", server)
    assert code == 1 and "must start with http:// or https://" in err and out == ""
    assert service.supervisor.sessions == {}
    code, _, err = await pagecast("stop", "--device", "x", "--all", server)
    assert code == 2 and "say what to stop" in err
    code, out, _ = await pagecast("devices", server)
    assert code == 0 and "no Cast devices found" in out


async def test_a_server_that_is_not_there_is_named_with_what_to_check():
    code, out, err = await pagecast("status", "--server=http://127.0.0.1:9")
    assert code == 2 and "cannot reach pagecast at http://127.0.0.1:9" in err and "PAGECAST_SERVER" in err


async def test_a_stop_that_names_an_unknown_tv_fails_with_the_servers_reason(service):
    code, out, err = await pagecast("stop", "--device", "Livingroom TV", f"--server=http://127.0.0.1:{service.port}")
    assert code == 1 and out == ""
    assert "no Cast device 'Livingroom TV'; known devices: none found yet" in err


def test_status_shows_how_long_an_ended_session_ran_and_why_it_ended():
    from pagecast.client import status_table

    t0 = "2026-12-07T12:00:00Z"
    sessions = [
        {"id": "Run1", "state": "live", "started_at": t0, "ended_at": None, "viewers": 2, "url": "http://ha/a", "cast": {"device": "Den"}},
        {"id": "Done1", "state": "stopped", "started_at": t0, "ended_at": "2026-12-07T12:01:00Z", "stop_reason": "duration ended", "url": "http://ha/b"},
        {"id": "Bad1", "state": "failed", "started_at": t0, "ended_at": "2026-12-07T12:00:04Z", "error": "page did not load", "stop_reason": None, "url": "http://ha/c"},
    ]
    now = 1796644800.0 + 300  # 12:05, long after the two ended
    lines = {line.split()[0]: line for line in status_table(sessions, now).splitlines()}
    assert "why it ended" in lines["id"]
    assert "5 min" in lines["Run1"] and "ran" not in lines["Run1"]
    assert "ran 60 s" in lines["Done1"] and "duration ended" in lines["Done1"]
    assert "ran 4 s" in lines["Bad1"] and "page did not load" in lines["Bad1"]
    assert "why it ended" not in status_table(sessions[:1], now)  # no column for running ones alone


@pytest.mark.parametrize("command, says, defaults", [
    ("bench", "Measure pagecast against its targets", ["--seconds SECONDS  measuring window per case (default: 20.0)", "(default: every one)"]),
    ("chaos", "Do faults to a real pagecast serve", ["(default: 3.0)", "(default: 300.0)", "(default: every one)"]),
])
def test_bench_and_chaos_help_say_what_they_do_and_every_default(capsys, command, says, defaults):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert says in text and "(default: )" not in text and "(default: None)" not in text
    flat = " ".join(text.split())
    for default in defaults:
        assert " ".join(default.split()) in flat


# ---- several TVs: one render, a screen per TV --------------------------------------------------

DEN, KITCHEN = "CLI Den TV", "CLI Kitchen TV"


@pytest.fixture
async def two_tvs(nursery, tmp_path):
    """A service that knows two virtual TVs (addresses no other test file uses), and the TVs."""
    from helpers import lo, running_service

    from pagecast.virtual_tv import open_virtual_tv

    async with open_virtual_tv(host=lo("127.0.0.71"), name=DEN, player="ffmpeg") as den, \
            open_virtual_tv(host=lo("127.0.0.72"), name=KITCHEN, player="ffmpeg") as kitchen, \
            running_service(nursery, tmp_path, cast_hosts=(lo("127.0.0.71"), lo("127.0.0.72")), quality="720p") as svc:
        yield svc, den, kitchen


def _row(table: str, sid: str) -> str:
    [line] = [line for line in table.splitlines() if line.startswith(sid)]
    return line


@pytest.mark.slow
async def test_start_on_two_tvs_waits_for_both_and_screens_take_one_off_and_add_it_back(two_tvs, pages):
    svc, den, kitchen = two_tvs
    server = f"--server=http://127.0.0.1:{svc.port}"
    code, out, err = await pagecast("start", f"{pages}/dashboard.html", "--device", DEN, "--device", KITCHEN, "--wait", server)
    assert code == 0, (out, err)
    sid = out.split()[1].rstrip(":")
    assert f"{DEN}: playing after" in out and f"{KITCHEN}: playing after" in out, out
    assert den.player_state == kitchen.player_state == "PLAYING"
    assert len(svc.supervisor.active()) == 1
    code, out, _ = await pagecast("status", server)
    assert code == 0 and "TVs" in out.splitlines()[0]
    assert f"{DEN}: playing, {KITCHEN}: playing" in _row(out, sid)

    code, out, err = await pagecast("screens", "remove", sid, KITCHEN, server)
    assert code == 0, err
    assert out.strip() == f"took {KITCHEN} off session {sid}; it still shows on {DEN}"
    with trio.fail_after(10):
        while kitchen.player_state == "PLAYING":
            await trio.sleep(0.1)
    code, out, _ = await pagecast("status", server)
    assert f"{DEN}: playing, {KITCHEN}: removed by API" in _row(out, sid)
    assert den.player_state == "PLAYING"
    code, _, err = await pagecast("screens", "remove", sid, KITCHEN, server)
    assert code == 1 and "shows nothing on" in err

    code, out, err = await pagecast("screens", "add", sid, "--device", KITCHEN, "--for", "5m", "--wait", server)
    assert code == 0, (out, err)
    assert out.splitlines()[0] == f"session {sid} now shows on {DEN}, {KITCHEN}"
    assert f"{KITCHEN}: playing" in out and DEN not in out.splitlines()[-1]  # it follows the TVs it added
    assert kitchen.player_state == "PLAYING"

    code, out, err = await pagecast("start", f"{pages}/dashboard.html", "--device", KITCHEN, "--no-share", "--wait", server)
    assert code == 0 and "joined" not in out, (out, err)
    own = out.split()[1].rstrip(":")
    assert own != sid and len(svc.supervisor.active()) == 2, "a render of its own, the TV taken over"
    code, out, err = await pagecast("start", f"{pages}/dashboard.html", "--device", KITCHEN, server)
    assert code == 0 and out.split()[1].rstrip(":") == sid and out.rstrip().endswith("(joined: this page was already running)"), (out, err)

    code, out, _ = await pagecast("stop", "--device", DEN, server)
    assert code == 0 and out.strip() == f"took {DEN} off 1 session(s): {sid}"
    assert svc.supervisor.get(sid).active, "the session plays on the TV still on it"
    code, out, _ = await pagecast("stop", sid, server)
    assert out.strip() == f"stopped 1 session(s): {sid}"
    with trio.fail_after(15):
        while svc.supervisor.active():
            await trio.sleep(0.1)


def test_status_lists_each_tv_of_a_session_with_its_state_or_why_it_left():
    from pagecast.client import status_table

    t0 = "2026-12-07T12:00:00Z"
    screens = [
        {"device": "Den", "uuid": "u1", "state": "playing", "ended": None},
        {"device": "Kitchen", "uuid": "u2", "state": "done", "ended": "stopped on the TV"},
        {"device": "Hall", "uuid": "u3", "state": "done", "ended": "removed by API"},
        {"device": "Hall", "uuid": "u3", "state": "loading", "ended": None},  # added again
    ]
    sessions = [{"id": "Multi1", "state": "live", "started_at": t0, "url": "http://ha/a", "screens": screens, "cast": screens[0]}]
    row = _row(status_table(sessions, 1796644800.0), "Multi1")
    assert "Den: playing, Kitchen: stopped on the TV, Hall: loading" in row
