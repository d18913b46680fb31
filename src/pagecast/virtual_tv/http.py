"""The device's HTTP face, on ``host:8008`` (HTTP) and ``host:8443`` (HTTPS).

* ``/setup/eureka_info``: device info, as Cast devices answer it (pychromecast ``dial.py``
  and ``discovery.py`` read ``name``, ``device_info`` and ``ssdp_udn``; any ``params=``).
* ``/``: the screen, what the TV shows; ``/state``: the device's state as JSON.
* ``/receiver.html`` and ``/players/…``: the Shaka receiver page and the pinned players.
* ``POST /fault/<name>``: fault injection for the CLI and chaos harnesses.

A tiny HTTP/1.1 server (one request per connection) rather than an ASGI stack: faults need a
request to hang (silent network) or to end in a TCP RST, which only the socket owner can do.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import trio

from ..lowlevel.binaries import player_file
from .net import abort

if TYPE_CHECKING:
    from .device import VirtualTV

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
READ_TIMEOUT = 10.0
#: A request held by a silent network is dropped after this long, as a client would give up.
HANDLER_TIMEOUT = 60.0
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def arguments(self) -> dict[str, Any]:
        """Query parameters, overridden by a JSON object body."""
        args: dict[str, Any] = dict(self.query)
        if self.body.strip():
            data = json.loads(self.body)
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            args.update(data)
        return args


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Abort(Exception):
    """Reset the connection instead of answering."""


class BadRequest(Exception):
    pass


Handler = Callable[[Request], Awaitable[Response | None]]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, indent=1).encode(), headers={"Cache-Control": "no-store"})


async def _read_request(stream: trio.abc.Stream) -> Request | None:
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD:
            raise BadRequest("request head too large")
        data = await stream.receive_some(8192)
        if not data:
            return None
        buffer += data
    head, _, body = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest(f"bad request line {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        raise BadRequest("request body too large")
    while len(body) < length:
        data = await stream.receive_some(length - len(body))
        if not data:
            raise BadRequest("body cut short")
        body += data
    url = urlsplit(target)
    return Request(method.upper(), url.path, dict(parse_qsl(url.query)), headers, body[:length])


def _render(request: Request, response: Response) -> bytes:
    reason = HTTPStatus(response.status).phrase
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Connection": "close",
        **CORS,
        **response.headers,
    }
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + (b"" if request.method == "HEAD" else response.body)


async def _serve_connection(stream: trio.SocketStream, handler: Handler, ssl_context: ssl.SSLContext | None) -> None:
    reset = False
    try:
        conn: trio.abc.Stream = trio.SSLStream(stream, ssl_context, server_side=True) if ssl_context else stream
        try:
            with trio.fail_after(READ_TIMEOUT):
                request = await _read_request(conn)
        except BadRequest as exc:
            await conn.send_all(_render(Request("GET", "", {}, {}), json_response({"error": str(exc)}, 400)))
            return
        if request is None:
            return
        try:
            with trio.move_on_after(HANDLER_TIMEOUT):
                try:
                    response = await handler(request)
                except Abort:
                    raise
                except Exception:  # a broken route must not take the device down
                    log.exception("HTTP %s %s failed", request.method, request.path)
                    response = json_response({"error": "internal error"}, 500)
                if response is not None:
                    await conn.send_all(_render(request, response))
        except Abort:
            reset = True
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, ValueError) as exc:
        log.debug("HTTP connection ended: %s", exc or type(exc).__name__)
    finally:
        if reset:
            abort(stream)
        else:
            stream.socket.close()


async def serve_http(listener: trio.SocketListener, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
    """Serve until cancelled; the listener is closed on the way out."""
    try:
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    log.warning("HTTP accept failed: %s", exc)
                    await trio.sleep(0.5)
                    continue
                nursery.start_soon(_serve_connection, stream, handler, ssl_context)
    finally:
        listener.socket.close()


def _players_file(name: str) -> Path | None:
    return player_file(name)


class DeviceSite:
    """Routes of one virtual TV."""

    def __init__(self, tv: VirtualTV):
        self.tv = tv

    async def __call__(self, request: Request) -> Response | None:
        tv = self.tv
        if request.method == "OPTIONS":
            return Response(204)
        if request.path == "/setup/eureka_info" and request.method in ("GET", "HEAD"):
            if tv.network.mode == "reset":
                raise Abort
            await tv.network.passable()
            return json_response(tv.eureka_info())
        if request.method in ("GET", "HEAD"):
            if request.path in ("/", "/screen", "/index.html"):
                return Response(200, (STATIC / "screen.html").read_bytes(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
            if request.path == "/receiver.html":
                return Response(200, (STATIC / "receiver.html").read_bytes(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
            if request.path == "/state":
                return json_response(tv.state())
            if request.path.startswith("/players/"):
                file = _players_file(request.path.removeprefix("/players/"))
                if file is None or not file.is_file():
                    return json_response({"error": "player not installed; run ops/install"}, 404)
                return Response(200, file.read_bytes(), "text/javascript", {"Cache-Control": "public, max-age=86400"})
        if request.method == "POST" and request.path.startswith("/fault/"):
            return await self._fault(request.path.removeprefix("/fault/"), request)
        return json_response({"error": f"no route {request.method} {request.path}"}, 404)

    async def _fault(self, name: str, request: Request) -> Response:
        tv = self.tv
        try:
            args = request.arguments()
            if name == "remote_stop":
                tv.remote_stop()
            elif name == "remote_quit":
                tv.remote_quit()
            elif name == "launch_app":
                tv.launch_app(str(args.get("app_id") or args.get("appId") or ""), args.get("name"))
            elif name == "standby":
                tv.standby(_flag(args.get("on", True)))
            elif name == "drop_network":
                tv.drop_network(str(args.get("mode", "silent")))
            elif name == "restore_network":
                tv.restore_network()
            elif name == "slow_network":
                tv.slow_network(float(args.get("delay_s", args.get("delay", 0.5))))
            elif name == "refuse_load":
                reason = args.get("reason", "LOAD_FAILED")
                tv.refuse_load(None if reason in (None, "", "null", "none") else str(reason))
            elif name == "restart":
                await tv.restart(float(args.get("downtime", 0.0)))
            else:
                return json_response({"error": f"no fault {name!r}"}, 404)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"ok": True, "state": tv.state()})


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() not in ("0", "false", "no", "off", "")
    return bool(value)
