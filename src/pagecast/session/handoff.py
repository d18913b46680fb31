"""Which Chromium's frames reach the encoder: one Chromium's at a time, in order.

A session replaces a Chromium that grew old or big make-before-break: the new one loads the
page while the old one keeps streaming, and takes over once it has its first frame. Each
renderer hands its frames to its own :class:`Outlet`; only the active outlet's frames go on,
through the switch's one forwarding task, so the two Chromiums' frames never interleave,
and a frame captured before the last one handed on is moved just after it
(``core.page.in_order``): capture times toward the encoder only go forward.
"""

from __future__ import annotations

import logging

import trio

from ..core.page import Frame, in_order

log = logging.getLogger(__name__)


class Outlet:
    """One renderer's way to the encoder. It takes frames like the send end of a memory
    channel (all ``run_renderer`` needs), never blocks and keeps only the newest: while the
    outlet is active, a newer frame replaces the one waiting, or takes back the one the
    switch is still trying to hand on (the encoder is behind), and the older one is counted
    in ``stats["frames_dropped"]``. A waiting outlet (its Chromium still loading) holds its
    newest frame for the moment it takes over; a retired one drops everything."""

    def __init__(self, switch: FrameSwitch, stats: dict):
        self._switch = switch
        self._stats = stats
        self.latest: Frame | None = None
        self.retired = False

    def send_nowait(self, frame: Frame) -> None:
        if self.retired:
            return
        active = self._switch.active is self
        if active and (self._switch._take_back() or self.latest is not None):
            self._stats["frames_dropped"] = self._stats.get("frames_dropped", 0) + 1
        self.latest = frame
        if active:
            self._switch._wake()

    async def send(self, frame: Frame) -> None:
        await trio.lowlevel.checkpoint()
        self.send_nowait(frame)

    def retire(self) -> None:
        self.retired = True
        self.latest = None


class FrameSwitch:
    """Forwards the active outlet's frames to the encoder's channel (``run``), one at a time."""

    def __init__(self, out: trio.MemorySendChannel[Frame]):
        self._out = out
        self.active: Outlet | None = None
        self.last: float | None = None  # capture time of the last frame handed on
        self.last_frame: Frame | None = None  # the last frame handed on: what the stream shows
        self._wakeup = trio.Event()
        self._sending: trio.CancelScope | None = None  # around a send the encoder has not taken yet

    def outlet(self, stats: dict) -> Outlet:
        return Outlet(self, stats)

    def take_over(self, outlet: Outlet) -> None:
        """From now on only ``outlet``'s frames go on, its newest first; the one active
        before is retired. Synchronous: once this returns, no frame of the old one goes on
        (one the encoder has not taken yet is taken back)."""
        old, self.active = self.active, outlet
        if old is not None and old is not outlet:
            old.retire()
            self._take_back()
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()

    def _take_back(self) -> bool:
        """Withdraw the frame being handed on, if the encoder has not taken it yet (a memory
        channel's send cancelled while it waits delivers nothing)."""
        if self._sending is None:
            return False
        self._sending.cancel()
        return True

    async def run(self) -> None:
        """Hand the active outlet's newest frame on whenever there is one, until cancelled
        or the encoder's channel is closed."""
        while True:
            outlet = self.active
            frame = outlet.latest if outlet is not None else None
            if frame is None:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                continue
            outlet.latest = None
            frame = in_order(frame, self.last)
            with trio.CancelScope() as sending:
                self._sending = sending
                try:
                    await self._out.send(frame)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    log.debug("frame consumer is gone; not forwarding frames any more")
                    return
                finally:
                    self._sending = None
            if not sending.cancelled_caught:  # else taken back: a newer frame is due
                self.last = frame.captured_at
                self.last_frame = frame
