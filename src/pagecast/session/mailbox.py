"""Handing frames from capture to the encoder without ever blocking capture."""

from __future__ import annotations

import logging

import trio

from ..core.page import Frame

log = logging.getLogger("pagecast.session.render")


class Mailbox:
    """Hands frames to the consumer without ever blocking capture: if the consumer is behind,
    the older undelivered frame is replaced by the newer one (counted as dropped)."""

    def __init__(self, frames: trio.MemorySendChannel[Frame], stats: dict):
        self._frames = frames
        self._stats = stats
        self._pending: Frame | None = None
        self._wakeup = trio.Event()
        self._sending: trio.CancelScope | None = None
        self.closed = False

    def put(self, frame: Frame) -> None:
        if self.closed:
            return
        if self._sending is not None:
            # The forwarder is blocked on an older frame: take it back, send this one.
            self._stats["frames_dropped"] += 1
            self._sending.cancel()
        elif self._pending is not None:
            self._stats["frames_dropped"] += 1
        else:
            try:
                self._frames.send_nowait(frame)
                return
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                log.debug("frame consumer is gone; not sending frames any more")
                self.closed = True
                return
        self._pending = frame
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._pending is not None:
                frame = self._pending
                with trio.CancelScope() as self._sending:
                    try:
                        await self._frames.send(frame)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        log.debug("frame consumer is gone; not sending frames any more")
                        self.closed = True
                        return
                self._sending = None
                if self._pending is frame:
                    self._pending = None
