"""HTTP surface (quart-trio): control API, stream publishing, watch pages, health.

Handlers ask the supervisor; they never own sessions. Streams are served from each
session's in-memory publisher.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from quart import Response, g, request
from quart_trio import QuartTrio

from .. import __version__
from ..core.answers import DeviceAnswer, DevicesAnswer, ErrorAnswer, HealthAnswer, StatusAnswer, StoppedAnswer, to_json
from ..core.errors import BodyTooLarge, EncodeError, InvalidRequest, Refused, UnsupportedMediaType
from ..core.lifecycle import State
from ..core.request import json_error, parse_screen, parse_start, parse_stop
from ..core.settings import PRESETS, Settings
from ..lowlevel.binaries import PLAYER_FILES, find_players_dir
from ..session.cast_link import peek
from ..session.supervisor import Session, Supervisor
from .errors import status_for
from .openapi import document
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

STATIC = Path(__file__).parents[1] / "static"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Range, Authorization",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
}
NO_CACHE = "no-cache, no-store, must-revalidate"
#: What PAGECAST_API_TOKEN guards (handler names); streams, watch pages and /health stay open.
CONTROL_ENDPOINTS = {"start", "stop", "status", "session_status", "devices", "add_screens", "remove_screen"}


PAD_BLOCK = 32 * 1024
PAD_INTERVAL = 0.2


def free_box(size: int) -> bytes:
    """An MP4 ``free`` box of exactly ``size`` bytes (at least 8): demuxers skip it."""
    return max(size, 8).to_bytes(4, "big") + b"free" + bytes(max(size, 8) - 8)


async def pad_progressive(chunks):
    """Keep a progressive viewer's byte rate above what Chromium's native player needs.

    Chromium's FFmpeg-based demuxer reads in 32 KiB blocks and waits until a block is
    full, so a quiet page (a few kB/s) would starve it for seconds. Whenever less than a
    block went out in the last PAD_INTERVAL, a ``free`` box tops it up: at most 160 kB/s
    of padding on an idle page, none on a busy one."""
    sent = 0
    window_start = trio.current_time()
    async for chunk in chunks:
        yield chunk
        sent += len(chunk)
        now = trio.current_time()
        if now - window_start >= PAD_INTERVAL:
            if sent < PAD_BLOCK:
                yield free_box(PAD_BLOCK - sent)
            sent, window_start = 0, now


def error(message: str, status: int) -> Response:
    return Response(json.dumps(to_json(ErrorAnswer(message))), status=status, mimetype="application/json", headers=CORS)


def ok(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, indent=1), status=status, mimetype="application/json", headers={**CORS, "Cache-Control": NO_CACHE})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """A single ``bytes=`` range as (start, end inclusive); None = whole; 'bad' = 416."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None  # unsupported forms (multiple ranges) get the whole body, as RFC 9110 allows
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            return "bad"
    else:
        length = int(last)
        if length == 0:
            return "bad"
        start, end = max(0, size - length), size - 1
    return start, end


def bytes_response(body: bytes, mimetype: str, cache: str) -> Response:
    headers = {**CORS, "Cache-Control": cache, "Accept-Ranges": "bytes"}
    rng = parse_range(request.headers.get("Range"), len(body))
    if rng == "bad":
        return Response(b"", status=416, headers={**headers, "Content-Range": f"bytes */{len(body)}"})
    if rng is None:
        return Response(body, status=200, mimetype=mimetype, headers=headers)
    start, end = rng
    return Response(
        body[start : end + 1], status=206, mimetype=mimetype,
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(body)}"},
    )


def create_app(supervisor: Supervisor, settings: Settings, base_url: Callable[[], str], instance_id: str = "") -> QuartTrio:
    """``base_url()`` is what TVs use to reach us; known once the server socket is bound.
    ``instance_id``: this service's stable id (server/identity.py)."""
    app = QuartTrio(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["RESPONSE_TIMEOUT"] = None
    app.config["BODY_TIMEOUT"] = 10
    players_dir = find_players_dir()
    started = time.time()

    def describe(session: Session) -> dict[str, Any]:
        return to_json(session.status(watch_url=f"{base_url()}/watch/{session.id}"))

    def live_session(session_id: str) -> Session | Response:
        session = supervisor.get(session_id)
        if session is None:
            return error(f"no session {session_id!r}", 404)
        if session.state is not State.LIVE:
            if session.active:
                return error(f"session {session_id} is still starting; retry in a moment", 404)
            return error(f"session {session_id} has ended ({session.error or session.stop_reason})", 404)
        return session

    def reader() -> tuple[str, str]:
        """Who fetched a stream's playlist or segment: one player per address and user agent."""
        return request.remote_addr or "", request.headers.get("User-Agent", "")

    async def read_json() -> Any:
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            raise BodyTooLarge(f"the body is {length} bytes; at most {settings.max_body_bytes} are accepted")
        raw = await request.get_data(cache=False)
        g.body_read = True
        if len(raw) > settings.max_body_bytes:
            raise BodyTooLarge(f"the body is larger than {settings.max_body_bytes} bytes")
        if not raw.strip():
            return {}
        ctype = request.mimetype
        if ctype and ctype not in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            raise UnsupportedMediaType(f"send JSON with 'Content-Type: application/json' (got {ctype!r})")
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest("the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise InvalidRequest(json_error(exc.doc, exc.msg, exc.pos, exc.lineno, exc.colno)) from None

    @app.before_request
    async def authorize():
        """With PAGECAST_API_TOKEN set, the control endpoints need it as a bearer token."""
        if not settings.api_token or request.endpoint not in CONTROL_ENDPOINTS or request.method == "OPTIONS":
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            why = f"{request.path} needs 'Authorization: Bearer <token>' with this service's API token (PAGECAST_API_TOKEN)"
        elif not hmac.compare_digest(given.strip().encode(), settings.api_token.encode()):
            why = "the token in 'Authorization: Bearer …' does not match this service's API token (PAGECAST_API_TOKEN)"
        else:
            return None
        response = error(why, 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="pagecast"'
        return response

    @app.errorhandler(Refused)
    async def refused(exc: Refused):
        return error(str(exc), status_for(exc))

    @app.errorhandler(413)
    async def too_large(exc):
        return error(f"the body is larger than {settings.max_body_bytes} bytes", 413)

    @app.errorhandler(404)
    async def not_found(exc):
        return error(f"nothing at {request.path}; see GET / for what this server offers", 404)

    @app.errorhandler(405)
    async def not_allowed(exc):
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        response = error(f"{request.method} is not allowed on {request.path}; use {', '.join(allowed) or 'another path'}", 405)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.after_request
    async def close_unread(response: Response) -> Response:
        """A request answered without reading its body (an error before it) closes its
        connection: Hypercorn would keep it open with the body unread, and the client's next
        request on it would hang (Hypercorn 0.18 with Trio, seen while a session runs)."""
        if (request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "").lower()) and not g.get("body_read"):
            response.headers["Connection"] = "close"
        return response

    @app.after_request
    async def cors(response: Response) -> Response:
        """Cast receivers and browser players fetch cross-origin: every answer allows it."""
        for key, value in CORS.items():
            response.headers.setdefault(key, value)
        if request.method == "OPTIONS":
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.post("/start")
    async def start():
        body = await read_json()
        try:
            profiles = settings.load_profiles()
        except ValueError as exc:
            return error(str(exc), 500)
        req = parse_start(body, settings, profiles)
        started_ = await supervisor.start(req)
        return await answer_started(started_.session, joined=started_.joined)

    async def answer_started(session: Session, **extra: Any) -> Response:
        """202 with the session; with ``?wait=1``, once it plays on its TVs (or 422 if it failed)."""
        if request.args.get("wait") in ("1", "true", "live"):
            with trio.move_on_after(settings.load_timeout + 15):
                await session.wait_ready()
            if session.state is State.FAILED:
                return ok({**describe(session), **extra}, status=422)
        return ok({**describe(session), **extra}, status=202)

    @app.post("/sessions/<session_id>/screens")
    async def add_screens(session_id: str):
        session = supervisor.get(session_id)
        body = await read_json()
        if session is None:
            return error(f"no session {session_id!r}", 404)
        await supervisor.add_screen(session, parse_screen(body, session.request))
        return await answer_started(session)

    @app.delete("/sessions/<session_id>/screens/<path:device>")
    async def remove_screen(session_id: str, device: str):
        session = supervisor.get(session_id)
        if session is None:
            return error(f"no session {session_id!r}", 404)
        supervisor.remove_screen(session, device)
        return ok(describe(session))

    @app.post("/stop")
    async def stop():
        body = await read_json()
        sid, device = parse_stop(body)
        if sid is not None and supervisor.get(sid) is None:
            return error(f"no session {sid!r}", 404)
        stopped = supervisor.stop(session_id=sid, device=device)
        return ok(to_json(StoppedAnswer([s.id for s in stopped])))

    @app.get("/status")
    async def status():
        base = base_url()
        return ok(to_json(StatusAnswer(
            version=__version__, uptime_seconds=round(time.time() - started),
            sessions=[s.status(watch_url=f"{base}/watch/{s.id}") for s in supervisor.sessions.values()], active=len(supervisor.active()),
        )))

    @app.get("/sessions/<session_id>")
    async def session_status(session_id: str):
        session = supervisor.get(session_id)
        if session is None:
            return error(f"no session {session_id!r}", 404)
        return ok(describe(session))

    @app.get("/sessions/<session_id>/thumbnail.jpg")
    async def thumbnail(session_id: str):
        """The session's newest picture, 480 px wide, remade at most once a second. Like the
        streams, its unguessable URL is the key: picture cards cannot send a token."""
        session = supervisor.get(session_id)
        if session is None:
            return error(f"no session {session_id!r}", 404)
        frame = session.picture()
        if frame is None:
            if session.active:
                # Not a server failure: like a playlist still starting, it is not there yet.
                response = error(f"session {session_id} has no picture yet; retry in a moment", 404)
                response.headers["Retry-After"] = "1"
                return response
            return error(f"session {session_id} has ended ({session.error or session.stop_reason}); it keeps no picture", 410)
        try:
            data = await session.thumbnails.of(frame)
        except (EncodeError, OSError) as exc:
            return error(f"could not make the thumbnail: {exc}", 503)
        return Response(data, mimetype="image/jpeg", headers={**CORS, "Cache-Control": "max-age=1"})

    @app.get("/devices")
    async def devices():
        """Known Cast devices, what each shows (for those a session holds) and its session."""
        if supervisor.directory.unreachable:
            await supervisor.directory.refresh_static()  # a TV switched on since the last poll shows up now
        found = supervisor.directory.list()
        owners = {d.uuid: supervisor.by_device(d) for d in found}
        screens: dict[str, Any] = {}

        async def look(device) -> None:
            owner = owners[device.uuid]
            if owner is not None and owner.watcher is not None and owner.watcher.screen is not None:
                screens[device.uuid] = owner.watcher.screen
            else:
                screens[device.uuid] = await peek(device, settings.cast_connect_timeout)

        async with trio.open_nursery() as nursery:
            for device in found:
                nursery.start_soon(look, device)
        out = []
        for device in found:
            owner = owners[device.uuid]
            screen = screens.get(device.uuid)
            out.append(DeviceAnswer(
                **device.public(),
                session=owner.id if owner is not None else None,
                reachable=not isinstance(screen, str),
                current_app=None if isinstance(screen, str) or screen is None else (screen.app_name or screen.app_id),
                screen=screen if isinstance(screen, str) or screen is None else screen.public(),
            ))
        return ok(to_json(DevicesAnswer(
            devices=out, mdns=settings.mdns, static_hosts=list(settings.cast_hosts),
            unreachable=dict(supervisor.directory.unreachable), default_device=settings.default_device or None,
        )))

    metrics = Metrics(supervisor, __version__)

    @app.get("/metrics")
    async def prometheus():
        """Prometheus metrics (server/metrics.py). Not a control endpoint: it reveals no page."""
        return Response(await metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": NO_CACHE})

    contract = json.dumps(document(__version__, token=bool(settings.api_token)), indent=1)

    @app.get("/openapi.json")
    async def openapi():
        """The API's contract (server/openapi.py), OpenAPI 3.1."""
        return Response(contract, mimetype="application/json", headers={"Cache-Control": NO_CACHE})

    @app.get("/health")
    async def health():
        return ok(to_json(HealthAnswer(
            status="ok", version=__version__, instance_id=instance_id, sessions=len(supervisor.active()),
            max_sessions=settings.max_sessions, players=players_dir is not None,
            presets={name: q.to_dict() for name, q in PRESETS.items()}, encoder=supervisor.encoders.health(),
        )))

    @app.get("/streams/<session_id>/index.m3u8")
    async def playlist(session_id: str):
        session = live_session(session_id)
        if isinstance(session, Response):
            return session
        session.publisher.fetched_by(reader())
        return Response(
            session.publisher.playlist(), mimetype="application/vnd.apple.mpegurl",
            headers={**CORS, "Cache-Control": NO_CACHE},
        )

    @app.get("/streams/<session_id>/init-<int:generation>.mp4")
    async def init_segment(session_id: str, generation: int):
        session = supervisor.get(session_id)
        data = session.publisher.init(generation) if session else None
        if data is None:
            return error("no such init segment", 404)
        session.publisher.fetched_by(reader())
        return bytes_response(data, "video/mp4", "public, max-age=3600")

    @app.get("/streams/<session_id>/seg-<int:sequence>.m4s")
    async def media_segment(session_id: str, sequence: int):
        session = supervisor.get(session_id)
        data = session.publisher.segment(sequence) if session else None
        if data is None:
            return error(f"segment {sequence} is not (or no longer) available", 404)
        session.publisher.fetched_by(reader())
        return bytes_response(data, "video/iso.segment", "public, max-age=3600")

    @app.get("/streams/<session_id>/live.mp4")
    async def progressive(session_id: str):
        session = live_session(session_id)
        if isinstance(session, Response):
            return session
        rng = request.headers.get("Range")
        log.debug("live.mp4 viewer for %s (Range: %s, %s)", session_id, rng, request.headers.get("User-Agent", "")[:60])
        if rng and not re.fullmatch(r"\s*bytes=0-\s*", rng):
            return Response(b"", status=416, headers={**CORS, "Content-Range": "bytes */*"})

        session.new_viewer()

        async def body():
            async for chunk in pad_progressive(session.publisher.follow()):
                yield chunk

        return Response(body(), mimetype="video/mp4", headers={**CORS, "Cache-Control": NO_CACHE, "Accept-Ranges": "none"})

    @app.get("/watch/<session_id>")
    async def watch(session_id: str):
        session = supervisor.get(session_id)
        if session is None:
            return error(f"no session {session_id!r}", 404)
        page = (STATIC / "watch.html").read_text()
        page = page.replace("{{SESSION}}", json.dumps({"id": session.id, "mode": session.request.mode, "stream_url": session.stream_url}))
        return Response(page, mimetype="text/html", headers={"Cache-Control": NO_CACHE})

    @app.get("/players/<name>")
    async def player(name: str):
        if players_dir is None or name not in PLAYER_FILES:
            return error(f"player {name!r} is not installed; run ops/install", 404)
        data = (players_dir / PLAYER_FILES[name]).read_bytes()
        return bytes_response(data, "text/javascript", "public, max-age=86400")

    @app.get("/demo/dashboard")
    async def demo_dashboard():
        return Response((STATIC / "demo.html").read_text(), mimetype="text/html")

    @app.get("/")
    async def index():
        return Response((STATIC / "index.html").read_text(), mimetype="text/html", headers={"Cache-Control": NO_CACHE})

    return app
