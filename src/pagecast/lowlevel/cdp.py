"""A small Trio-native Chrome DevTools Protocol client over trio-websocket.

Structure (modelled on trio-websocket's own): :func:`open_cdp` owns a nursery with one
*reader* task that does all receiving and one *writer* task that does all sending.

* :meth:`CdpConnection.execute` queues its request without awaiting (so a cancellation can
  never tear a WebSocket frame half-way) and waits for its answer; an error answer raises
  :class:`CdpError`.
* When the reader exits (socket closed, browser gone, or the block is left) every pending
  ``execute`` fails at once with :class:`CdpConnectionClosed`, and so does every later one;
  every :meth:`~CdpConnection.listen` channel ends (``EndOfChannel``). Nothing hangs.
* Flattened sessions: pass ``session_id`` (from ``Target.attachToTarget{flatten: true}``),
  or use :meth:`CdpConnection.session` for a bound :class:`CdpSession`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_websocket

from .groups import reraise_alone

log = logging.getLogger(__name__)

#: Screenshots arrive as one base64 message; a 4K JPEG at quality 100 is a few MB.
DEFAULT_MAX_MESSAGE_SIZE = 256 * 2**20
DEFAULT_TIMEOUT = 30.0
#: ``listen(..., session_id=ANY_SESSION)`` receives an event whatever session it came from.
ANY_SESSION: Any = object()


class CdpException(Exception):
    """Base class of this module's errors."""


class CdpError(CdpException):
    """The browser answered a command with an error."""

    def __init__(self, method: str, code: int | None, message: str):
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class CdpConnectionClosed(CdpException):
    """The DevTools connection is gone (browser exited or crashed, or the client closed it)."""


class CdpTimeout(CdpException):
    """The browser did not answer a command within its timeout."""


@dataclass(frozen=True)
class CdpEvent:
    method: str
    params: dict[str, Any]
    session_id: str | None = None


class _Pending:
    __slots__ = ("method", "done", "result", "error")

    def __init__(self, method: str):
        self.method = method
        self.done = trio.Event()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None


@dataclass(eq=False)
class _Subscription:
    methods: frozenset[str]
    session_id: Any
    send: trio.MemorySendChannel[CdpEvent] = field(repr=False)

    def wants(self, event: CdpEvent) -> bool:
        if self.methods and event.method not in self.methods:
            return False
        return self.session_id is ANY_SESSION or self.session_id == event.session_id


class CdpConnection:
    """One DevTools WebSocket; create it with :func:`open_cdp`."""

    def __init__(self, ws: trio_websocket.WebSocketConnection):
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subscriptions: list[_Subscription] = []
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[str](math.inf)
        self._closed_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    async def execute(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a command and return its result; raises CdpError / CdpConnectionClosed / CdpTimeout."""
        if self._closed_reason is not None:
            raise CdpConnectionClosed(f"{method}: {self._closed_reason}")
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        pending = _Pending(method)
        self._pending[msg_id] = pending
        try:
            # Never blocks: the writer task owns the socket, so a cancel here cannot
            # leave a half-sent frame behind.
            self._outbox_send.send_nowait(json.dumps(message))
            with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                await pending.done.wait()
        finally:
            self._pending.pop(msg_id, None)
        if scope.cancelled_caught:
            raise CdpTimeout(f"{method}: no answer from the browser within {timeout:g} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    @asynccontextmanager
    async def listen(
        self, *methods: str, session_id: Any = ANY_SESSION, max_buffer: float = math.inf
    ) -> AsyncIterator[trio.MemoryReceiveChannel[CdpEvent]]:
        """Receive events named ``methods`` (all events if none) while the block runs.

        ``session_id``: only events of that session (``None``: browser-level events only).
        The channel ends (``EndOfChannel``) when the connection closes. Events that arrive
        while ``max_buffer`` are already waiting are dropped (with a warning).
        """
        send, recv = trio.open_memory_channel[CdpEvent](max_buffer)
        sub = _Subscription(frozenset(methods), session_id, send)
        self._subscriptions.append(sub)
        if self._closed_reason is not None:
            send.close()
        try:
            async with recv:
                yield recv
        finally:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
            send.close()

    def session(self, session_id: str) -> "CdpSession":
        return CdpSession(self, session_id)

    # -- internals ---------------------------------------------------------------------

    def _dispatch(self, event: CdpEvent) -> None:
        for sub in list(self._subscriptions):
            if sub.wants(event):
                try:
                    sub.send.send_nowait(event)
                except trio.WouldBlock:
                    log.warning("CDP: listener for %s is %s events behind; dropped one", event.method, sub.send.statistics().current_buffer_used)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    pass

    def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            log.warning("CDP: ignored a message that is not a JSON object")
            return
        msg_id = message.get("id")
        if msg_id is not None:
            pending = self._pending.get(msg_id)
            if pending is None:
                return  # its caller was cancelled or timed out
            if "error" in message:
                err = message["error"] or {}
                pending.error = CdpError(pending.method, err.get("code"), err.get("message", str(err)))
            else:
                pending.result = message.get("result") or {}
            pending.done.set()
        elif "method" in message:
            self._dispatch(CdpEvent(message["method"], message.get("params") or {}, message.get("sessionId")))

    def _close(self, reason: str) -> None:
        """Fail everything pending and end all listeners. Idempotent; never blocks."""
        if self._closed_reason is None:
            self._closed_reason = reason
        for pending in list(self._pending.values()):
            if not pending.done.is_set():
                pending.error = CdpConnectionClosed(f"{pending.method}: {self._closed_reason}")
                pending.done.set()
        for sub in self._subscriptions:
            sub.send.close()
        self._outbox_send.close()

    async def _reader(self) -> None:
        reason = "the DevTools connection was closed"
        try:
            while True:
                raw = await self._ws.get_message()
                self._handle(raw)
        except trio_websocket.ConnectionClosed as exc:
            reason = f"the DevTools connection was closed ({exc.reason.name if exc.reason else 'no reason'})"
        except BaseException as exc:
            if not isinstance(exc, trio.Cancelled):
                log.exception("CDP reader failed")
            raise
        finally:
            self._close(reason)

    async def _writer(self) -> None:
        try:
            async for message in self._outbox_recv:
                await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed:
            self._close("the DevTools connection was closed while sending")


class CdpSession:
    """A flattened target session: ``execute``/``listen`` with the session id filled in."""

    def __init__(self, connection: CdpConnection, session_id: str):
        self.connection = connection
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"<CdpSession {self.session_id}>"

    async def execute(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return await self.connection.execute(method, params, session_id=self.session_id, timeout=timeout)

    def listen(self, *methods: str, max_buffer: float = math.inf):
        return self.connection.listen(*methods, session_id=self.session_id, max_buffer=max_buffer)


@asynccontextmanager
async def open_cdp(
    ws_url: str,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    connect_timeout: float = 10.0,
    disconnect_timeout: float = 2.0,
) -> AsyncIterator[CdpConnection]:
    """Connect to a DevTools WebSocket URL; the connection lives for the block.

    Exceptions raised by the block come out unwrapped (not in an ExceptionGroup).
    """
    async with trio_websocket.open_websocket_url(
        ws_url,
        max_message_size=max_message_size,
        message_queue_size=64,
        receive_buffer_size=None,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
    ) as ws:
        conn = CdpConnection(ws)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn._reader, name="cdp-reader")
                nursery.start_soon(conn._writer, name="cdp-writer")
                try:
                    yield conn
                finally:
                    conn._close("the DevTools connection was closed by the client")
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Our tasks never raise (except Cancelled), so the only exception of interest
            # is the block's own: raise it as it was raised.
            real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
            if len(real) == 1:
                reraise_alone(real[0])
            if not real and len(group.exceptions) >= 1:
                reraise_alone(group.exceptions[0])
            raise
