"""``pagecast start | stop | status | devices | screens``: a running pagecast, driven from the shell.

A thin client of the control API (docs/api.md), so a cast is one command instead of
hand-written ``curl`` JSON. The server is ``--server`` or ``PAGECAST_SERVER`` (default
``http://127.0.0.1:8000``); the API token, if the server wants one, comes from
``PAGECAST_API_TOKEN``, never from the command line (where ``ps`` would show it).
Exit status: 0 done, 1 the server refused or the session failed, 2 the server cannot be reached
or the command line is wrong.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any
from urllib.parse import quote

from .core.settings import PRESETS

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: How long ``--wait`` waits for the TVs (or the stream) before giving up.
WAIT_LIMIT = 120.0
POLL = 0.25

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.I)


def parse_duration(text: str) -> float:
    """``60``, ``60s``, ``5m``, ``1.5h`` → seconds."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: give seconds (60, 60s), minutes (5m) or hours (1h)")
    unit = (m.group(2) or "s").lower()[0]
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]


def add_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=None, help=f"the pagecast to talk to (default: PAGECAST_SERVER, else {DEFAULT_SERVER})")

    start = sub.add_parser("start", help="show a page on a TV (or only stream it) through a running pagecast")
    common(start)
    start.add_argument("url", nargs="?", default=None, help="the page (optional with --profile)")
    start.add_argument("--device", action="append", default=None, help="a TV: its name, uuid or address (`pagecast devices`); repeat it for several TVs, one render shown on each; default: the server's default device")
    start.add_argument("--stream-only", action="store_true", help="cast nowhere, only stream (even if the server has a default device)")
    start.add_argument("--for", dest="duration", type=parse_duration, default=None, metavar="DURATION", help="end by itself after this long: 60, 60s, 5m, 1h")
    start.add_argument("--profile", default=None, help="a profile from the server's PAGECAST_PROFILES_FILE")
    start.add_argument("--quality", default=None, choices=list(PRESETS), help="a screen preset (default: the server's PAGECAST_QUALITY)")
    start.add_argument("--mode", default=None, choices=("hls", "fmp4"))
    start.add_argument("--kiosk", action="store_true", help="Home Assistant without its sidebar and top bar")
    start.add_argument("--theme", default=None, choices=("dark", "light"))
    start.add_argument("--no-share", dest="share", action="store_false", help="a render of its own, even if a running session shows the identical page (by default this start joins it)")
    start.add_argument("--wait", action="store_true", help="show progress until every TV plays it (or the stream is live), or say why it failed")
    stop = sub.add_parser("stop", help="stop a session, the one on a TV, or all")
    common(stop)
    stop.add_argument("id", nargs="?", default=None, help="a session id (`pagecast status`)")
    stop.add_argument("--device", default=None, help="stop what plays on this TV")
    stop.add_argument("--all", action="store_true", help="stop every session")
    status = sub.add_parser("status", help="the sessions: state, TVs, page, uptime")
    common(status)
    status.add_argument("--all", action="store_true", help="ended sessions too")
    devices = sub.add_parser("devices", help="the Cast devices the server knows and what each shows")
    common(devices)
    screens = sub.add_parser("screens", help="add TVs to a running session, or take one off it")
    actions = screens.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="show a running session on more TVs (each taken over from what it shows)")
    common(add)
    add.add_argument("id", help="the session (`pagecast status`)")
    add.add_argument("--device", action="append", required=True, help="a TV: its name, uuid or address; repeat it for several")
    add.add_argument("--for", dest="duration", type=parse_duration, default=None, metavar="DURATION", help="take these TVs off by themselves after this long: 60, 60s, 5m, 1h")
    add.add_argument("--wait", action="store_true", help="show progress until these TVs play it, or say why one failed")
    remove = actions.add_parser("remove", help="take a TV off a session (it gets back what it showed before); the session ends with its last TV")
    common(remove)
    remove.add_argument("id", help="the session (`pagecast status`)")
    remove.add_argument("device", help="the TV: its name, uuid or address")


class Failed(Exception):
    """The server refused, or the session failed: exit 1 with this message."""


class Unreachable(Exception):
    """No answer from the server: exit 2 with this message."""


class Api:
    def __init__(self, server: str | None):
        import httpx

        self.httpx = httpx
        self.base = (server or os.environ.get("PAGECAST_SERVER") or DEFAULT_SERVER).rstrip("/")
        token = os.environ.get("PAGECAST_API_TOKEN", "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.base, timeout=30, headers=headers)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            r = self.client.request(method, path, json=body)
        except self.httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach pagecast at {self.base} ({type(exc).__name__}): is `pagecast serve` running there? (--server, PAGECAST_SERVER)") from None
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text[:300]}
        if not r.is_success:
            hint = " (set PAGECAST_API_TOKEN)" if r.status_code == 401 else ""
            raise Failed(f"{data.get('error') or f'HTTP {r.status_code}'}{hint}")
        return data


def _start_body(args: argparse.Namespace) -> dict[str, Any]:
    if not args.url and not args.profile:
        raise argparse.ArgumentTypeError("give the page's URL, or --profile")
    if args.stream_only and args.device:
        raise argparse.ArgumentTypeError("--stream-only and --device contradict each other")
    body: dict[str, Any] = {}
    for key in ("url", "profile", "quality", "mode", "duration", "theme"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.device:
        body["device"] = _one_or_list(args.device)
    if args.stream_only:
        body["device"] = None
    if args.kiosk:
        body["kiosk"] = True
    if not args.share:
        body["share"] = False
    return body


def _one_or_list(devices: list[str]) -> str | list[str]:
    return devices[0] if len(devices) == 1 else devices


def _names(screen: dict[str, Any], spec: str) -> bool:
    """Whether ``spec`` (a name, uuid or address, as given) is this screen's TV."""
    wanted = spec.strip().casefold()
    return any(wanted == str(screen.get(key) or "").casefold() for key in ("device", "uuid", "address"))


def current_screens(session: dict[str, Any], only: list[str] | None = None) -> list[dict[str, Any]]:
    """Each TV's latest screen in the session (a TV taken off and added again has two), or
    only those of the TVs ``only`` names. A pagecast that lists no screens has its one ``cast``."""
    screens = session.get("screens")
    if not isinstance(screens, list):
        screens = [session["cast"]] if session.get("cast") else []
    latest: dict[str, dict[str, Any]] = {}
    for screen in screens:
        latest[str(screen.get("uuid") or screen.get("device"))] = screen
    chosen = list(latest.values())
    if only is not None:
        chosen = [s for s in chosen if any(_names(s, spec) for spec in only)]
    return chosen


def screen_state(screen: dict[str, Any], timing: bool = False) -> str:
    """What a TV does in its session: its watcher's state while on (``timing``: how long it
    took to play), why it left after."""
    if screen.get("ended"):
        return str(screen["ended"]) + (f" ({screen['error']})" if screen.get("error") and screen["error"] not in screen["ended"] else "")
    playing = timing and screen.get("state") == "playing" and screen.get("seconds_to_playing")
    return f"{screen.get('state')}" + (f" after {screen['seconds_to_playing']:.1f} s" if playing else "")


def progress_line(session: dict[str, Any], only: list[str] | None = None) -> str:
    """What one look at a session says, on one line: the session, then each TV (``only`` those
    it names)."""
    state = session.get("state", "?")
    if state == "failed":
        return f"failed: {session.get('error') or session.get('stop_reason') or 'no reason given'}"
    if state in ("stopped", "stopping"):
        return f"{state}: {session.get('stop_reason') or ''}".rstrip(": ")
    parts = [state]
    if session.get("startup_seconds") is not None:
        parts.append(f"(live after {session['startup_seconds']:.1f} s)")
    tvs = [f"{s.get('device') or 'TV'}: {screen_state(s, timing=True)}" for s in current_screens(session, only)]
    if tvs:
        parts.append("· " + ", ".join(tvs))
    return " ".join(parts)


def done(session: dict[str, Any], only: list[str] | None = None) -> bool | None:
    """True: every TV (``only`` those it names) plays it, or it is live when it only streams;
    False: it ended, or a TV left; None: not yet."""
    state = session.get("state")
    if state in ("failed", "stopped", "stopping"):
        return False
    screens = current_screens(session, only)
    if not screens:
        return True if state == "live" and not session.get("devices") and only is None else None
    if any(s.get("ended") for s in screens):
        return False if all(s.get("ended") or s.get("state") == "playing" for s in screens) else None
    return True if all(s.get("state") == "playing" for s in screens) else None


def follow(api: Api, session: dict[str, Any], out, only: list[str] | None = None) -> int:
    """Print each change of the session (of the TVs ``only`` names) until they all play (0),
    one of them or the session ended (1), or WAIT_LIMIT passed (1)."""
    sid = session["id"]
    last = ""
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        line = progress_line(session, only)
        if line != last:
            print(f"  {line}", file=out, flush=True)
            last = line
        verdict = done(session, only)
        if verdict is not None:
            return 0 if verdict else 1
        time.sleep(POLL)
        session = api.call("GET", f"/sessions/{sid}")
    print(f"  still not playing after {WAIT_LIMIT:g} s; it keeps trying (`pagecast status`, `pagecast stop {sid}`)", file=out)
    return 1


def start(api: Api, args: argparse.Namespace, out) -> int:
    session = api.call("POST", "/start", _start_body(args))
    joined = " (joined: this page was already running)" if session.get("joined") else ""
    print(f"session {session['id']}: {session.get('stream_url', '')}{joined}", file=out)
    return follow(api, session, out) if args.wait else 0


def screens(api: Api, args: argparse.Namespace, out) -> int:
    if args.action == "remove":
        session = api.call("DELETE", f"/sessions/{args.id}/screens/{quote(args.device, safe='')}")
        left = [s.get("device") for s in current_screens(session) if not s.get("ended") and not _names(s, args.device)]  # it is still leaving
        print(f"took {args.device} off session {args.id}; " + (f"it still shows on {', '.join(left)}" if left else "that was its last TV"), file=out)
        return 0
    body: dict[str, Any] = {"device": _one_or_list(args.device)}
    if args.duration is not None:
        body["duration"] = args.duration
    session = api.call("POST", f"/sessions/{args.id}/screens", body)
    print(f"session {args.id} now shows on {', '.join(s.get('device') or '?' for s in current_screens(session) if not s.get('ended'))}", file=out)
    return follow(api, session, out, only=args.device) if args.wait else 0


def stop(api: Api, args: argparse.Namespace, out) -> int:
    chosen = [name for name, given in (("an id", args.id), ("--device", args.device), ("--all", args.all)) if given]
    if len(chosen) != 1:
        raise argparse.ArgumentTypeError("say what to stop: a session id, --device NAME or --all")
    body = {"id": args.id} if args.id else {"device": args.device} if args.device else {}
    answer = api.call("POST", "/stop", body)
    stopped = answer.get("stopped", [])
    listed = ": " + ", ".join(stopped) if stopped else ""
    if args.device:  # the TV leaves; a session ends only if it was its last TV
        print(f"took {args.device} off {len(stopped)} session(s){listed}", file=out)
    else:
        print(f"stopped {len(stopped)} session(s){listed}", file=out)
    return 0


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _when(iso: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def tvs_cell(session: dict[str, Any]) -> str:
    """Each TV of a session and what it does there: ``Den: playing, Kitchen: stopped on the TV``."""
    screens = current_screens(session)
    if not screens:
        return session.get("device") or "—"
    return ", ".join(f"{s.get('device') or s.get('uuid') or 'TV'}: {screen_state(s)}" for s in screens)


def status_table(sessions: list[dict[str, Any]], now: float) -> str:
    """The sessions as a table. A running one shows how long it has been up; an ended one how
    long it ran (it stopped counting when it ended) and why it ended. TVs: each TV the session
    is (or was) on, with its state there or why it left."""
    ended = any(s.get("ended_at") for s in sessions)
    rows = []
    for s in sessions:
        started, finished = _when(s.get("started_at")), _when(s.get("ended_at"))
        took = "—" if started is None else f"ran {_span(finished - started)}" if finished is not None else _span(now - started)
        row = [s["id"], s.get("state", ""), tvs_cell(s), took, str(s.get("viewers", 0))]
        if ended:
            row.append((s.get("error") or s.get("stop_reason") or "") if s.get("state") in ("failed", "stopped", "stopping") else "")
        rows.append([*row, s.get("url", "")])
    return _table(["id", "state", "TVs", "up", "viewers", *(["why it ended"] if ended else []), "page"], rows)


def status(api: Api, args: argparse.Namespace, out) -> int:
    sessions = api.call("GET", "/status").get("sessions", [])
    if not args.all:
        sessions = [s for s in sessions if s.get("state") in ("starting", "live", "stopping")]
    if not sessions:
        print("no sessions" + ("" if args.all else " running (--all for ended ones)"), file=out)
        return 0
    print(status_table(sessions, time.time()), file=out)
    return 0


def devices(api: Api, args: argparse.Namespace, out) -> int:
    found = api.call("GET", "/devices").get("devices", [])
    if not found:
        print("no Cast devices found (mDNS, or list them in the server's PAGECAST_CAST_HOSTS)", file=out)
        return 0
    rows = [[d.get("name", ""), d.get("model") or "", d.get("address") or "", d.get("session") or "—",
             (d.get("current_app") or "idle") if d.get("reachable") else "unreachable"] for d in found]
    print(_table(["name", "model", "address", "session", "shows"], rows), file=out)
    return 0


COMMANDS = {"start": start, "stop": stop, "status": status, "devices": devices, "screens": screens}


def main(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    try:
        api = Api(args.server)
        return COMMANDS[args.command](api, args, out)
    except argparse.ArgumentTypeError as exc:
        print(f"pagecast {args.command}: {exc}", file=sys.stderr)
        return 2
    except Unreachable as exc:
        print(f"pagecast {args.command}: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"pagecast {args.command}: {exc}", file=sys.stderr)
        return 1
