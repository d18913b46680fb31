"""Sessions and their screens: GET /status, GET /sessions/<id>, the TVs of a session, and its
thumbnail."""

from __future__ import annotations

import time

import trio
from quart import Blueprint, Response

from ... import __version__
from ...core.answers import StatusAnswer, to_json
from ...core.errors import EncodeError, Gone, NotYet, Unavailable
from ...core.request import parse_screen
from ..web import CORS, Context, answer_started, ok, read_json


def routes(ctx: Context) -> Blueprint:
    bp = Blueprint("sessions", __name__)
    supervisor = ctx.supervisor

    @bp.get("/status")
    async def status():
        return ok(to_json(StatusAnswer(
            version=__version__, uptime_seconds=round(time.time() - ctx.started),
            sessions=[s.status(watch_url=f"{ctx.base_url()}/watch/{s.id}") for s in supervisor.sessions.values()],
            active=len(supervisor.active()),
        )))

    @bp.get("/sessions/<session_id>")
    async def session_status(session_id: str):
        return ok(ctx.describe(ctx.session(session_id)))

    @bp.post("/sessions/<session_id>/screens")
    async def add_screens(session_id: str):
        body = await read_json(ctx.settings.max_body_bytes)
        session = ctx.session(session_id)
        await supervisor.add_screen(session, parse_screen(body, session.request))
        return await answer_started(ctx, session)

    @bp.delete("/sessions/<session_id>/screens/<path:device>")
    async def remove_screen(session_id: str, device: str):
        """Answers once the screen has left and its TV was given back (within the give-back's bound)."""
        session = ctx.session(session_id)
        screen = supervisor.remove_screen(session, device)
        with trio.move_on_after(ctx.settings.cast_restore_timeout + 1):
            await screen.done.wait()
        return ok(ctx.describe(session))

    @bp.get("/sessions/<session_id>/thumbnail.jpg")
    async def thumbnail(session_id: str):
        """The session's newest picture, 480 px wide, remade at most once a second. Like the
        streams, its unguessable URL is the key: picture cards cannot send a token."""
        session = ctx.session(session_id)
        frame = session.picture()
        if frame is None:
            if session.active:
                # Not a server failure: like a playlist still starting, it is not there yet.
                raise NotYet(f"session {session_id} has no picture yet; retry in a moment")
            raise Gone(f"session {session_id} has ended ({session.error or session.stop_reason}); it keeps no picture")
        try:
            data = await session.thumbnails.of(frame)
        except (EncodeError, OSError) as exc:
            raise Unavailable(f"could not make the thumbnail: {exc}") from None
        return Response(data, mimetype="image/jpeg", headers={**CORS, "Cache-Control": "max-age=1"})

    return bp
