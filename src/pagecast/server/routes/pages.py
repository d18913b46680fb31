"""The pages a person opens: the status page, a session's watch page, the players it loads,
and the demo dashboard."""

from __future__ import annotations

import json

from quart import Blueprint, Response

from ...core.errors import NotFound
from ...lowlevel.binaries import PLAYER_FILES
from ..web import NO_CACHE, STATIC, Context, bytes_response


def routes(ctx: Context) -> Blueprint:
    bp = Blueprint("pages", __name__)

    @bp.get("/")
    async def index():
        return Response((STATIC / "index.html").read_text(), mimetype="text/html", headers={"Cache-Control": NO_CACHE})

    @bp.get("/watch/<session_id>")
    async def watch(session_id: str):
        session = ctx.session(session_id)
        page = (STATIC / "watch.html").read_text()
        page = page.replace("{{SESSION}}", json.dumps({"id": session.id, "mode": session.request.mode, "stream_url": session.stream_url}))
        return Response(page, mimetype="text/html", headers={"Cache-Control": NO_CACHE})

    @bp.get("/players/<name>")
    async def player(name: str):
        if ctx.players_dir is None or name not in PLAYER_FILES:
            raise NotFound(f"player {name!r} is not installed; run ops/install")
        return bytes_response((ctx.players_dir / PLAYER_FILES[name]).read_bytes(), "text/javascript", "public, max-age=86400")

    @bp.get("/demo/dashboard")
    async def demo_dashboard():
        return Response((STATIC / "demo.html").read_text(), mimetype="text/html")

    return bp
