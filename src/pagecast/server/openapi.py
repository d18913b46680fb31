"""The API's contract as an OpenAPI 3.1 document (``GET /openapi.json``).

Request bodies come from the field tables the handlers validate with (``core/request.py``);
answers from the classes the handlers' JSON is made of (``core/answers.py``); error statuses
from the one table that maps domain errors (``server/errors.py``). ``tests/test_contract.py``
fuzzes the live service to hold it to this."""

from __future__ import annotations

from typing import Any

from ..core.answers import DevicesAnswer, ErrorAnswer, HealthAnswer, StatusAnswer, StoppedAnswer, nested, schema_of
from ..core.errors import BodyTooLarge, Conflict, InvalidRequest, NotFound, ShuttingDown, TooManySessions, UnsupportedMediaType
from ..core.request import STOP_FIELDS, body_schema, screen_schema, start_schema
from .errors import STATUS

JSON = "application/json"
STRING = {"type": "string"}
OBJECT = {"type": "object"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(why: str) -> dict[str, Any]:
    return _json(_ref("Error"), why)


def _raw(media: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def _status(kind: type) -> str:
    return str(STATUS[kind])


ANSWERS = (ErrorAnswer, StatusAnswer, StoppedAnswer, DevicesAnswer, HealthAnswer)


def _answer_schemas() -> dict[str, Any]:
    """Every answer's schema, made from its class in ``core/answers.py`` (named without "Answer")."""
    schemas: dict[str, Any] = {}
    for top in ANSWERS:
        for cls in nested(top):
            schemas[_name(cls)] = schema_of(cls, lambda c: _ref(_name(c)))
    return schemas


def _name(cls: type) -> str:
    return cls.__name__.removesuffix("Answer")


SCHEMAS: dict[str, Any] = _answer_schemas()

WAIT = {
    "name": "wait", "in": "query", "required": False, "schema": STRING,
    "description": "1, true or live: answer once the session is live and its TVs play (or it failed), not at once.",
}
SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": STRING}
RANGE = {"name": "Range", "in": "header", "required": False, "schema": STRING, "description": "One `bytes=` range."}
CONTROL_ERRORS = {"401": _error("PAGECAST_API_TOKEN is set and the request's bearer token is missing or wrong.")}
BODY_ERRORS = {
    _status(InvalidRequest): _error("The body or a field is wrong; the message names it and what is allowed."),
    _status(BodyTooLarge): _error("The body is larger than PAGECAST_MAX_BODY_BYTES."),
    _status(UnsupportedMediaType): _error("The body is not JSON."),
}


def _session_answers(accepted: str, failed: str) -> dict[str, Any]:
    """What a POST that puts a session on TVs answers: the session at once, or with ?wait=1
    once its TVs play (422 when it failed meanwhile); or why its body was refused."""
    return {"202": _json(_ref("Session"), accepted), "422": _json(_ref("Session"), f"With ?wait=1: {failed}"), **BODY_ERRORS}


def _ranged(media: str, whole: str, missing: str, outside: str) -> dict[str, Any]:
    """What a file served whole or in one byte range answers."""
    return {
        "200": _raw(media, whole), "206": _raw(media, "The asked range."),
        "404": _error(missing), "416": {"description": f"The range is outside {outside}."},
    }


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _op(summary: str, responses: dict[str, Any], control: bool = False, **more: Any) -> dict[str, Any]:
    op = {"summary": summary, "operationId": more.pop("operation_id"), "responses": responses, **more}
    if control:
        op["tags"] = ["control"]
    return op


def document(version: str, token: bool) -> dict[str, Any]:
    """The whole document. ``token``: PAGECAST_API_TOKEN is set, so control endpoints need it."""

    def control(op: dict[str, Any]) -> dict[str, Any]:
        if token:
            op["security"] = [{"bearer": []}]
            op["responses"].update(CONTROL_ERRORS)
        return op

    paths: dict[str, Any] = {
        "/start": {"post": control(_op(
            "Render a page and cast it (or only stream it, with device null)",
            {
                **_session_answers("Started; it goes live (and on the TV) in a moment.", "the session failed while starting; its error says why."),
                _status(NotFound): _error("No such profile or device."),
                _status(Conflict): _error("The TV is busy (if_idle), unreachable, or the name is ambiguous."),
                _status(TooManySessions): _error("PAGECAST_MAX_SESSIONS sessions are running."),
                _status(ShuttingDown): _error("The service is shutting down."),
                "500": _error("PAGECAST_PROFILES_FILE cannot be read; the message says why."),
            },
            operation_id="start",
            parameters=[WAIT],
            requestBody=_body(start_schema()),
        ))},
        "/stop": {"post": control(_op(
            "Stop a session, the session on a TV, or all",
            {
                "200": _json(_ref("Stopped"), "These sessions are stopping; each gives its TV back."),
                **BODY_ERRORS,
                _status(NotFound): _error("No session with that id, or no Cast device by that name, uuid or address (the answer lists the known ones)."),
            },
            operation_id="stop",
            requestBody=_body(body_schema(STOP_FIELDS), required=False),
        ))},
        "/sessions/{session_id}/screens": {"post": control(_op(
            "Add a TV (or several) to a running session",
            {
                **_session_answers("The TVs joined; they play in a moment.", "the session failed meanwhile."),
                _status(NotFound): _error("No such session, or no Cast device by that name, uuid or address."),
                _status(Conflict): _error("The TV is busy (if_idle) or unreachable, or the session is ending."),
            },
            operation_id="add_screens", parameters=[SESSION_ID, WAIT],
            requestBody=_body(screen_schema()),
        ))},
        "/sessions/{session_id}/screens/{device}": {"delete": control(_op(
            "Take a TV off a session (the TV is given back; the session ends if it was its last)",
            {"200": _json(_ref("Session"), "The session; the screen is leaving."), "404": _error("No such session, or it shows nothing on that TV.")},
            operation_id="remove_screen",
            parameters=[SESSION_ID, {"name": "device", "in": "path", "required": True, "schema": STRING, "description": "The TV: name, uuid or address."}],
        ))},
        "/status": {"get": control(_op("Every session, newest last", {"200": _json(_ref("Status"), "The service and its sessions.")}, operation_id="status"))},
        "/sessions/{session_id}": {"get": control(_op(
            "One session", {"200": _json(_ref("Session"), "The session."), "404": _error("No such session.")},
            operation_id="session_status", parameters=[SESSION_ID],
        ))},
        "/devices": {"get": control(_op(
            "Known Cast devices and what each shows", {"200": _json(_ref("Devices"), "Devices found by mDNS or PAGECAST_CAST_HOSTS.")},
            operation_id="devices",
        ))},
        "/sessions/{session_id}/thumbnail.jpg": {"get": _op(
            "The session's newest picture, 480 px wide (its unguessable URL is the key)",
            {
                "200": _raw("image/jpeg", "A JPEG, cached for a second."),
                "404": _error("No such session, or no picture yet (Retry-After: 1)."),
                "410": _error("The session has ended and keeps no picture."),
                "503": _error("The thumbnail could not be made (FFmpeg failed); the message says why."),
            },
            operation_id="thumbnail", parameters=[SESSION_ID],
        )},
        "/health": {"get": _op("Liveness and what this service can do", {"200": _json(_ref("Health"), "Healthy.")}, operation_id="health")},
        "/metrics": {"get": _op(
            "Prometheus metrics", {"200": _raw("text/plain", "The Prometheus text format, version 0.0.4.")}, operation_id="metrics",
        )},
        "/openapi.json": {"get": _op("This document", {"200": _json(OBJECT, "OpenAPI 3.1.")}, operation_id="openapi")},
        "/streams/{session_id}/index.m3u8": {"get": _op(
            "The live HLS playlist (mode hls)",
            {"200": _raw("application/vnd.apple.mpegurl", "The playlist."), "404": _error("No such session, or it is not live.")},
            operation_id="playlist", parameters=[SESSION_ID],
        )},
        "/streams/{session_id}/init-{generation}.mp4": {"get": _op(
            "An fMP4 init segment",
            _ranged("video/mp4", "The init segment.", "No such session or init segment.", "the segment"),
            operation_id="init_segment", parameters=[SESSION_ID, {"name": "generation", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}, RANGE],
        )},
        "/streams/{session_id}/seg-{sequence}.m4s": {"get": _op(
            "An fMP4 media segment",
            _ranged("video/iso.segment", "The segment.", "No such session, or the segment is gone from the window.", "the segment"),
            operation_id="media_segment", parameters=[SESSION_ID, {"name": "sequence", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}, RANGE],
        )},
        "/streams/{session_id}/live.mp4": {"get": _op(
            "The live progressive fMP4 stream (mode fmp4); it does not end while the session runs",
            {"200": _raw("video/mp4", "The stream."), "404": _error("No such session, or it is not live."), "416": {"description": "Only `bytes=0-` is served."}},
            operation_id="progressive", parameters=[SESSION_ID, RANGE],
        )},
        "/watch/{session_id}": {"get": _op(
            "A page that plays the session in the browser", {"200": _raw("text/html", "The watch page."), "404": _error("No such session.")},
            operation_id="watch", parameters=[SESSION_ID],
        )},
        "/players/{name}": {"get": _op(
            "The browser players the watch page uses (hls.js, Shaka)",
            _ranged("text/javascript", "The player.", "No such player, or the players are not installed.", "the file"),
            operation_id="player", parameters=[{"name": "name", "in": "path", "required": True, "schema": STRING}, RANGE],
        )},
        "/demo/dashboard": {"get": _op("The demo dashboard page", {"200": _raw("text/html", "The page.")}, operation_id="demo_dashboard")},
        "/": {"get": _op("The status page", {"200": _raw("text/html", "The page.")}, operation_id="index")},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "pagecast",
            "version": version,
            "description": "Render a web page, stream it as HLS or fragmented MP4, and cast it to Google Cast TVs. "
                           "Every error is `{\"error\": \"…\"}` saying what to fix; a refused request starts nothing.",
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
    if token:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "description": "PAGECAST_API_TOKEN"}}
    return doc
