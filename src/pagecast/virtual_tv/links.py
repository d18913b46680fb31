"""CASTV2 server side: TLS connections from senders, each an actor with one reader and one
writer, and the virtual connections (sender id → receiver id) opened inside it.

Messages go out through a per-connection queue so that the device's logic stays synchronous:
it decides, enqueues and moves on; the writer sends in order, honouring the network's delay
and freezes. A connection never outlives the server's nursery.
"""

from __future__ import annotations

import itertools
import logging
import math
import ssl
from collections.abc import Callable
from typing import Any

import trio

from .castv2 import FrameDecoder, FrameError, Message, encode
from .net import Network, abort, open_listener

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0


class SenderLink:
    """One TLS connection from a sender and the virtual connections opened over it."""

    def __init__(self, number: int, peer: str, network: Network):
        self.number = number
        self.peer = peer
        self.virtual: set[tuple[str, str]] = set()
        self.aborted = False
        self.scope = trio.CancelScope()
        self._network = network
        self._outbox_send, self._outbox = trio.open_memory_channel[tuple[float, bytes]](math.inf)

    def __repr__(self) -> str:
        return f"<SenderLink #{self.number} {self.peer}>"

    def senders_of(self, endpoint: str) -> list[str]:
        """Sender ids on this connection that opened a virtual connection to ``endpoint``."""
        return sorted(src for src, dst in self.virtual if dst == endpoint)

    def send(self, source_id: str, destination_id: str, namespace: str, payload: dict[str, Any] | bytes) -> None:
        try:
            self._outbox_send.send_nowait((trio.current_time() + self._network.delay, encode(source_id, destination_id, namespace, payload)))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def reply(self, request: Message, payload: dict[str, Any]) -> None:
        """Answer ``request``: source and destination swapped, its requestId echoed."""
        self.send(request.destination_id, request.source_id, request.namespace, {**payload, "requestId": request.request_id})

    def abort(self) -> None:
        """End the connection with a TCP RST."""
        self.aborted = True
        self.scope.cancel()

    async def run(self, stream: trio.SocketStream, ssl_context: ssl.SSLContext, on_message: Callable[[SenderLink, Message], None]) -> None:
        try:
            with self.scope:
                await self._network.passable()  # a frozen network never completes the handshake
                tls = trio.SSLStream(stream, ssl_context, server_side=True)
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    await tls.do_handshake()
                log.debug("%r connected", self)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, tls)
                    await self._read(tls, on_message)
                    nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
            log.debug("%r: %s", self, exc or type(exc).__name__)
        finally:
            self._outbox_send.close()
            if self.aborted:
                abort(stream)
            else:
                stream.socket.close()
            log.debug("%r closed%s", self, " (reset)" if self.aborted else "")

    async def _read(self, tls: trio.SSLStream, on_message: Callable[[SenderLink, Message], None]) -> None:
        decoder = FrameDecoder()
        while True:
            try:
                data = await tls.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.debug("%r: receive failed: %r (%r)", self, exc, exc.__cause__)
                return
            if not data:
                log.debug("%r: the sender closed the connection", self)
                return
            await self._network.passable()
            try:
                messages = decoder.feed(data)
            except FrameError as exc:
                log.warning("%r sent a bad frame, closing: %s", self, exc)
                return
            for message in messages:
                try:
                    on_message(self, message)
                except Exception:  # one bad message must not take the device down
                    log.exception("%r: failed to handle %s %s", self, message.namespace, message.payload)

    async def _write(self, tls: trio.SSLStream) -> None:
        async for due, frame in self._outbox:
            await trio.sleep_until(due)
            await self._network.passable()
            try:
                await tls.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.debug("%r: send failed: %r (%r)", self, exc, exc.__cause__)
                self.scope.cancel()
                return


class CastServer:
    """Accepts sender connections on ``host:port`` (8009) and runs each as a :class:`SenderLink`."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        network: Network,
        on_message: Callable[[SenderLink, Message], None],
        on_link_closed: Callable[[SenderLink], None] = lambda link: None,
    ):
        self.host = host
        self.port = port
        self.links: set[SenderLink] = set()
        self._ssl = ssl_context
        self._network = network
        self._on_message = on_message
        self._on_link_closed = on_link_closed
        self._listener: trio.SocketListener | None = None
        self._reopen = trio.Event()
        self._numbers = itertools.count(1)
        self._links_changed = trio.Event()

    def refuse(self) -> None:
        """Abort every connection and stop listening: new connections are refused (RST)."""
        for link in list(self.links):
            link.abort()
        self._reopen = trio.Event()
        if self._listener is not None:
            self._listener.socket.close()
            self._listener = None

    def resume(self) -> None:
        self._reopen.set()

    async def wait_no_links(self) -> None:
        while self.links:
            await self._links_changed.wait()

    async def serve(self, listener: trio.SocketListener) -> None:
        """Accept on ``listener`` (bound by the caller, so a busy address fails its start)
        until cancelled; after :meth:`refuse`, :meth:`resume` listens again."""
        self._listener = listener
        try:
            async with trio.open_nursery() as nursery:
                await self._accept_forever(nursery)
        finally:
            if self._listener is not None:
                self._listener.socket.close()
                self._listener = None

    async def _accept_forever(self, nursery: trio.Nursery) -> None:
        while True:
            if self._listener is None:
                await self._reopen.wait()
                self._reopen = trio.Event()
                try:
                    self._listener = await open_listener(self.host, self.port)
                except Exception as exc:  # noqa: BLE001 - keep trying, like a device whose network comes back
                    log.error("%s; retrying in 1 s", exc)
                    self._reopen.set()
                    await trio.sleep(1.0)
                    continue
            listener = self._listener
            try:
                stream = await listener.accept()
            except (trio.ClosedResourceError, OSError) as exc:
                if self._listener is listener:
                    log.warning("accept failed on %s:%d: %s", self.host, self.port, exc)
                    self._listener = None
                    listener.socket.close()
                    self._reopen.set()
                continue
            nursery.start_soon(self._run_link, stream)

    async def _run_link(self, stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        link = SenderLink(next(self._numbers), peer, self._network)
        self.links.add(link)
        try:
            await link.run(stream, self._ssl, self._on_message)
        finally:
            self.links.discard(link)
            self._links_changed.set()
            self._links_changed = trio.Event()
            self._on_link_closed(link)
