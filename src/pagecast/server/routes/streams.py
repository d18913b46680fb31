"""The streams TVs and players fetch, from the session's in-memory publisher: the live HLS
playlist, its init and media segments, and progressive fMP4."""

from __future__ import annotations

import logging
import re

import trio
from quart import Blueprint, Response, request

from ...core.errors import NotFound
from ...core.fmp4 import free_box
from ..web import CORS, NO_CACHE, Context, bytes_response

log = logging.getLogger(__name__)

PAD_BLOCK = 32 * 1024
PAD_INTERVAL = 0.2


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


def _reader() -> tuple[str, str]:
    """Who fetched a stream's playlist or segment: one player per address and user agent."""
    return request.remote_addr or "", request.headers.get("User-Agent", "")


def routes(ctx: Context) -> Blueprint:
    bp = Blueprint("streams", __name__)
    supervisor = ctx.supervisor

    @bp.get("/streams/<session_id>/index.m3u8")
    async def playlist(session_id: str):
        session = ctx.live(session_id)
        session.publisher.fetched_by(_reader())
        return Response(session.publisher.playlist(), mimetype="application/vnd.apple.mpegurl", headers={**CORS, "Cache-Control": NO_CACHE})

    @bp.get("/streams/<session_id>/init-<int:generation>.mp4")
    async def init_segment(session_id: str, generation: int):
        session = supervisor.get(session_id)
        data = session.publisher.init(generation) if session else None
        if data is None:
            raise NotFound("no such init segment")
        session.publisher.fetched_by(_reader())
        return bytes_response(data, "video/mp4", "public, max-age=3600")

    @bp.get("/streams/<session_id>/seg-<int:sequence>.m4s")
    async def media_segment(session_id: str, sequence: int):
        session = supervisor.get(session_id)
        data = session.publisher.segment(sequence) if session else None
        if data is None:
            raise NotFound(f"segment {sequence} is not (or no longer) available")
        session.publisher.fetched_by(_reader())
        return bytes_response(data, "video/iso.segment", "public, max-age=3600")

    @bp.get("/streams/<session_id>/live.mp4")
    async def progressive(session_id: str):
        session = ctx.live(session_id)
        rng = request.headers.get("Range")
        log.debug("live.mp4 viewer for %s (Range: %s, %s)", session_id, rng, request.headers.get("User-Agent", "")[:60])
        if rng and not re.fullmatch(r"\s*bytes=0-\s*", rng):
            return Response(b"", status=416, headers={**CORS, "Content-Range": "bytes */*"})
        session.new_viewer()

        async def body():
            async for chunk in pad_progressive(session.publisher.follow()):
                yield chunk

        return Response(body(), mimetype="video/mp4", headers={**CORS, "Cache-Control": NO_CACHE, "Accept-Ranges": "none"})

    return bp
