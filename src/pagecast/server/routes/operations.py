"""What operators and their tools read: GET /health, GET /metrics, GET /openapi.json."""

from __future__ import annotations

import json

from quart import Blueprint, Response

from ... import __version__
from ...core.answers import HealthAnswer, to_json
from ...core.settings import PRESETS
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics
from ..openapi import document
from ..web import NO_CACHE, Context, ok


def routes(ctx: Context) -> Blueprint:
    bp = Blueprint("operations", __name__)
    supervisor, settings = ctx.supervisor, ctx.settings
    metrics = Metrics(supervisor, __version__)
    contract = json.dumps(document(__version__, token=bool(settings.api_token)), indent=1)

    @bp.get("/health")
    async def health():
        return ok(to_json(HealthAnswer(
            status="ok", version=__version__, instance_id=ctx.instance_id, sessions=len(supervisor.active()),
            max_sessions=settings.max_sessions, players=ctx.players_dir is not None,
            presets={name: q.to_dict() for name, q in PRESETS.items()}, encoder=supervisor.encoders.health(),
            profiles=ctx.profiles.health() if ctx.profiles else {"file": None, "names": [], "error": None},
        )))

    @bp.get("/metrics")
    async def prometheus():
        """Prometheus metrics (server/metrics.py). Not a control endpoint: it reveals no page."""
        return Response(await metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": NO_CACHE})

    @bp.get("/openapi.json")
    async def openapi():
        """The API's contract (server/openapi.py), OpenAPI 3.1."""
        return Response(contract, mimetype="application/json", headers={"Cache-Control": NO_CACHE})

    return bp
