"""The stream supervisor: owns every session's task, and is the only one that stops sessions.

The HTTP handlers ask it; they never own sessions. One /start per TV at a time; a session
replacing another on a TV takes over what the first one will give back.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Callable

import trio

from ..core.device import Device
from ..core.encoders import LIBX264
from ..core.errors import ShuttingDown, TooManySessions
from ..core.request import StartRequest
from ..core.settings import Settings
from ..core.tally import Tally
from .actor import Session
from .encoder_probe import EncoderChoice

log = logging.getLogger(__name__)

ENDED_HISTORY = 50


class Supervisor:
    """Runs sessions in its nursery; ``start``, ``stop`` and ``shutdown`` are the only ways in."""

    def __init__(
        self, settings: Settings, directory=None, base_url: Callable[[], str] = lambda: "",
        encoders: EncoderChoice | None = None,
    ):
        """``directory`` resolves a /start's ``device`` to a Device (server.devices.Directory)."""
        self.settings = settings
        self.encoders = encoders if encoders is not None else EncoderChoice.unprobed(LIBX264)
        self.directory = directory
        self.base_url = base_url
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        #: The figures of sessions no longer kept, so that /metrics counters never go back.
        self.retired = Tally()
        self.started = 0  # sessions begun since the service began (those that failed to start too)
        self._device_locks: dict[str, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Sessions live in this nursery: cancelling it (the service's last resort) cancels them."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def shutdown(self, reason: str = "service shutting down") -> None:
        """Refuse new sessions, stop every session, and wait until all have ended."""
        self._nursery = None
        for session in self.active():
            session.stop(reason)
        for session in list(self.sessions.values()):
            await session.wait_ended()

    def active(self) -> list[Session]:
        """Sessions not yet ended (stopping ones too: they still hold their TV)."""
        return [s for s in self.sessions.values() if not s.state.ended]

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def start(self, request: StartRequest) -> Session:
        """Start a session; returns once it runs (and holds its TV, if it casts). A device that
        is unknown, unreachable or busy raises a Refused error and leaves nothing behind."""
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        device = await self.directory.resolve(request.device) if request.device else None
        if device is None:
            return await self._start(request, None)
        # One /start per TV at a time: a second one waits, then replaces the first (the latest
        # request wins), instead of both replacing a third and fighting over the screen.
        lock = self._device_locks.setdefault(device.uuid, trio.Lock())
        async with lock:
            return await self._start(request, device)

    async def _start(self, request: StartRequest, device: Device | None) -> Session:
        replaced = [s for s in self.active() if device is not None and s.target is not None and s.target.uuid == device.uuid]
        if len(self.active()) - len(replaced) >= self.settings.max_sessions:
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        inherited = None
        for old in replaced:
            # The TV goes straight to the new stream; what it showed before the first session
            # is what the new one gives back.
            handover = old.watcher.hand_over() if old.watcher is not None else None
            inherited = inherited or handover
            old.stop(f"replaced by a new session on {device.name}")
        for old in replaced:
            await old.wait_ended()
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        if len(self.active()) >= self.settings.max_sessions:  # others started while we waited
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        session = Session(request, self.settings, device=device, base_url=self.base_url, inherited=inherited, encoders=self.encoders)
        self.sessions[session.id] = session
        self.started += 1
        try:
            await self._nursery.start(session.run, name=f"session {session.id}")
        except BaseException:
            # Not kept (its /start answered the failure), but counted: /metrics never goes back.
            self.retired.add(self.sessions.pop(session.id).figures())
            raise
        self._forget_old()
        return session

    def by_device(self, device: Device) -> Session | None:
        return next((s for s in self.active() if s.target is not None and s.target.uuid == device.uuid), None)

    def stop(self, session_id: str | None = None, device: str | None = None, reason: str = "stopped by API") -> list[Session]:
        """The sessions now stopping. A ``device`` that names no session and no known device
        raises NotFound (a typo must not look like a stop that worked)."""
        if session_id is not None:
            session = self.sessions.get(session_id)
            targets = [session] if session is not None and session.active else []
        elif device is not None:
            targets = [s for s in self.active() if _names(s, device)]
            if not targets and self.directory is not None and not self.directory.knows(device):
                raise self.directory.unknown(device)
        else:
            targets = self.active()
        for s in targets:
            s.stop(reason)
        return targets

    def _forget_old(self) -> None:
        ended = [sid for sid, s in self.sessions.items() if s.state.ended]
        for sid in ended[: max(0, len(ended) - ENDED_HISTORY)]:
            self.retired.add(self.sessions.pop(sid).figures())


def _names(session: Session, spec: str) -> bool:
    """Whether ``spec`` (as given to /start: a name, uuid or address) names the session's device."""
    key = spec.strip().casefold()
    t = session.target
    if t is not None and key in (t.name.casefold(), t.uuid, t.uuid.replace("-", ""), t.host):
        return True
    return (session.device or "").casefold() == key
