"""A session's screens: the TVs that show its one render, each watched by a Cast watcher of its
own, with its own options, duration and give-back.

A screen runs as a task in its session's nursery, inside a cancel scope of its own: its
``duration``, a removal over the API and a hand-over to another session cancel that scope, and
the watcher gives the TV back on its way out, as a whole session's would. What ends one screen
(the TV's remote, another app, a TV that refuses the stream) ends only that screen; the session
decides what the last one leaving means.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import trio

from ..core.device import Device
from ..core.errors import CastError, DeviceEnded
from ..core.request import CastOptions
from ..core.screen import Handover
from ..core.answers import ScreenAnswer
from ..core.views import screen_answer


class Watcher(Protocol):
    """What a session needs of a screen's watcher (``session.cast.CastWatcher``)."""

    device: Device
    options: CastOptions
    playing: trio.Event
    state: str
    reconnects: int
    seconds_to_playing: float | None
    device_stop: str | None
    screen: Any

    async def run(self, wait_stream, task_status=trio.TASK_STATUS_IGNORED) -> None: ...

    def hand_over(self) -> Handover: ...

    def status(self) -> dict[str, Any]: ...


class Screen:
    """One TV of a session. ``ended`` says why it left (None while it shows the session)."""

    def __init__(self, watcher: Watcher, duration: float | None):
        self.watcher = watcher
        self.device = watcher.device
        self.duration = duration
        self.since = time.time()
        self.scope = trio.CancelScope()
        self.ended: str | None = None
        self.ended_at: float | None = None
        self.error: str | None = None
        self.done = trio.Event()
        self._leaving: str | None = None

    @property
    def uuid(self) -> str:
        return self.device.uuid

    @property
    def active(self) -> bool:
        return self.ended is None

    def leave(self, reason: str) -> None:
        """Take this TV off the session (given back by its watcher), for ``reason``."""
        if self._leaving is None:
            self._leaving = reason
        self.scope.cancel()

    def hand_over(self, reason: str) -> Handover:
        """Another session takes this TV: it gives back what this one would have."""
        handover = self.watcher.hand_over()
        self.leave(reason)
        return handover

    async def run(self, wait_stream, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Watch the TV until the screen ends. Raises what ended it from the TV (``DeviceEnded``,
        ``CastError``) after recording it; returns when its scope was cancelled (its duration,
        a removal, a hand-over)."""
        if self.duration is not None:
            self.scope.deadline = trio.current_time() + self.duration
        try:
            with self.scope:
                await self.watcher.run(wait_stream, task_status=task_status)
        except DeviceEnded as exc:
            self.ended = exc.reason
            raise
        except CastError as exc:
            self.ended, self.error = "failed", str(exc)
            raise
        finally:
            if self.ended is None:
                if self._leaving is not None:
                    self.ended = self._leaving
                elif self.scope.cancelled_caught and self.duration is not None:
                    self.ended = f"duration of {self.duration:g} s ended"
                else:
                    self.ended = "session ended"
            self.ended_at = time.time()
            self.done.set()

    async def settled(self) -> None:
        """Until the TV plays the stream or the screen ended."""
        async with trio.open_nursery() as nursery:
            async def first(event: trio.Event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(first, self.watcher.playing)
            nursery.start_soon(first, self.done)

    def status(self) -> ScreenAnswer:
        return screen_answer(self.watcher.status(), since=self.since, duration=self.duration, ended=self.ended, ended_at=self.ended_at, error=self.error)
