"""What every router shares: the service's context, JSON answers and errors, CORS, byte ranges
and reading a request body. Handlers raise domain errors (``core/errors.py``); the app turns
them into statuses with ``server/errors.py``'s one table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from quart import Response, g, request

from ..core.answers import ErrorAnswer, to_json
from ..core.errors import BodyTooLarge, InvalidRequest, NotFound, NotYet, UnsupportedMediaType
from ..core.lifecycle import State
from ..core.request import json_error
from ..core.settings import Settings
from ..session.supervisor import Session, Supervisor
from .profiles import Profiles

STATIC = Path(__file__).parents[1] / "static"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Range, Authorization",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
}
NO_CACHE = "no-cache, no-store, must-revalidate"


@dataclass
class Context:
    """The service as the routers see it. ``base_url()`` is what TVs use to reach us; known
    once the server socket is bound."""

    supervisor: Supervisor
    settings: Settings
    base_url: Callable[[], str]
    instance_id: str = ""
    profiles: Profiles | None = None
    players_dir: Path | None = None
    started: float = field(default_factory=time.time)

    def session(self, session_id: str) -> Session:
        session = self.supervisor.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session

    def live(self, session_id: str) -> Session:
        """A session whose stream can be fetched now."""
        session = self.session(session_id)
        if session.state is not State.LIVE:
            if session.active:
                raise NotYet(f"session {session_id} is still starting; retry in a moment")
            raise NotFound(f"session {session_id} has ended ({session.error or session.stop_reason})")
        return session

    def describe(self, session: Session) -> dict[str, Any]:
        return to_json(session.status(watch_url=f"{self.base_url()}/watch/{session.id}"))


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


async def read_json(max_bytes: int) -> Any:
    """The request's JSON body ({} when empty); refusals say what to send instead."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise BodyTooLarge(f"the body is {length} bytes; at most {max_bytes} are accepted")
    raw = await request.get_data(cache=False)
    g.body_read = True
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
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


async def answer_started(ctx: Context, session: Session, **extra: Any) -> Response:
    """202 with the session; with ``?wait=1``, once it plays on its TVs (or 422 if it failed)."""
    if request.args.get("wait") in ("1", "true", "live"):
        with trio.move_on_after(ctx.settings.load_timeout + 15):
            await session.wait_ready()
        if session.state is State.FAILED:
            return ok({**ctx.describe(session), **extra}, status=422)
    return ok({**ctx.describe(session), **extra}, status=202)
