"""The HTTP app (quart-trio): the routers (``server/routes/``), the API token, and what every
answer shares — errors as statuses (``server/errors.py``), CORS, closing a connection whose
body was never read.

Handlers ask the supervisor; they never own sessions. Streams are served from each session's
in-memory publisher.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from quart import g, request
from quart_trio import QuartTrio

from ..core.errors import NotYet, Refused
from ..core.settings import Settings
from ..lowlevel.binaries import find_players_dir
from ..session.supervisor import Supervisor
from .errors import status_for
from .profiles import Profiles
from .routes import control, operations, pages, sessions, streams
from .web import CORS, Context, error

#: What PAGECAST_API_TOKEN guards (endpoints); streams, thumbnails, pages and operations stay open.
CONTROL_ENDPOINTS = {
    "control.start", "control.stop", "control.devices",
    "sessions.status", "sessions.session_status", "sessions.add_screens", "sessions.remove_screen",
}


def create_app(
    supervisor: Supervisor, settings: Settings, base_url: Callable[[], str], instance_id: str = "", profiles: Profiles | None = None,
) -> QuartTrio:
    """``base_url()`` is what TVs use to reach us; known once the server socket is bound.
    ``instance_id``: this service's stable id (server/identity.py); ``profiles``: the
    profiles file as last read (server/profiles.py)."""
    app = QuartTrio(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["RESPONSE_TIMEOUT"] = None
    app.config["BODY_TIMEOUT"] = 10
    ctx = Context(supervisor, settings, base_url, instance_id, profiles, find_players_dir())
    for router in (control, sessions, streams, pages, operations):
        app.register_blueprint(router.routes(ctx))

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
        response = error(str(exc), status_for(exc))
        if isinstance(exc, NotYet):
            response.headers["Retry-After"] = f"{exc.retry_after:g}"
        return response

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
    async def close_unread(response):
        """A request answered without reading its body (an error before it) closes its
        connection: Hypercorn would keep it open with the body unread, and the client's next
        request on it would hang (Hypercorn 0.18 with Trio, seen while a session runs)."""
        if (request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "").lower()) and not g.get("body_read"):
            response.headers["Connection"] = "close"
        return response

    @app.after_request
    async def cors(response):
        """Cast receivers and browser players fetch cross-origin: every answer allows it."""
        for key, value in CORS.items():
            response.headers.setdefault(key, value)
        if request.method == "OPTIONS":
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    return app
