"""The stream supervisor: owns every session's task, and is the only one that stops sessions.

The HTTP handlers ask it; they never own sessions. One /start per TV at a time; a session
replacing another on a TV takes over what the first one will give back.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import trio

from ..core.device import Device, names
from ..core.encoders import LIBX264
from ..core.errors import Conflict, NotFound, ShuttingDown, TooManySessions
from ..core.lifecycle import State
from ..core.screen import Handover
from ..core.request import StartRequest
from ..core.settings import Settings
from ..core.tally import Tally
from .actor import REAL_PARTS, Parts, Session
from .screens import Screen
from .encoder_probe import EncoderChoice

log = logging.getLogger(__name__)

ENDED_HISTORY = 50


@dataclass(frozen=True)
class Started:
    """A /start's session, and whether it joined one already running the identical page."""

    session: Session
    joined: bool


class Supervisor:
    """Runs sessions in its nursery; ``start``, ``stop`` and ``shutdown`` are the only ways in."""

    def __init__(
        self, settings: Settings, directory=None, base_url: Callable[[], str] = lambda: "",
        encoders: EncoderChoice | None = None, parts: Parts = REAL_PARTS,
    ):
        """``directory`` resolves a /start's ``device`` to a Device (server.devices.Directory);
        ``parts``: what sessions are made of (tests give fakes)."""
        self.parts = parts
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

    async def start(self, request: StartRequest) -> Started:
        """Start a session, or join a live one that renders the identical page (``share``);
        returns once it runs and holds its TVs. A device that is unknown, unreachable or busy
        raises a Refused error and leaves nothing behind."""
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        devices: list[Device] = []
        for spec in request.devices:
            device = await self.directory.resolve(spec)
            if all(d.uuid != device.uuid for d in devices):
                devices.append(device)
        if not devices:
            return Started(await self._start(request, []), False)
        # One /start per TV at a time: a second one waits, then replaces the first (the latest
        # request wins), instead of both replacing a third and fighting over the screen. Locks
        # are taken in one order, so two /starts naming the same TVs cannot wait on each other.
        async with contextlib.AsyncExitStack() as stack:
            for device in sorted(devices, key=lambda d: d.uuid):
                await stack.enter_async_context(self._device_locks.setdefault(device.uuid, trio.Lock()))
            shared = self._same_page(request) if request.share else None
            if shared is not None:
                await shared.running.wait()  # one started a moment ago: join it once it runs
                if shared.joinable:
                    await self._join(shared, request, devices)
                    return Started(shared, True)
            return Started(await self._start(request, devices), False)

    def _same_page(self, request: StartRequest) -> Session | None:
        return next(
            (s for s in self.active() if s.state is not State.STOPPING and not s.cancel_scope.cancel_called and s.request.same_page(request)),
            None,
        )

    async def _take_over(self, devices: list[Device], keep: Session | None = None) -> dict[str, Handover]:
        """Take each TV off the session showing it (not ``keep``): the TV goes straight to the
        new stream, and what it showed before the first session is what the new one gives back."""
        inherited: dict[str, Handover] = {}
        leaving = []
        for device in devices:
            for old in self.active():
                screen = old.screen_on(device.uuid) if old is not keep else None
                if screen is not None:
                    inherited[device.uuid] = screen.hand_over(f"replaced by a new session on {device.name}")
                    leaving.append(screen)
        for screen in leaving:
            await screen.done.wait()
        return inherited

    async def _join(self, session: Session, request: StartRequest, devices: list[Device]) -> None:
        """Add the TVs not yet on ``session``; a TV that refuses takes back the ones this
        request added, so a failed /start leaves the session as it was."""
        new = [d for d in devices if session.screen_on(d.uuid) is None]
        inherited = await self._take_over(new, keep=session)
        added = []
        try:
            for device in new:
                added.append(await session.add_screen(device, request.cast, request.duration, inherited.get(device.uuid)))
        except BaseException:
            for screen in added:
                screen.leave("its /start failed")
            raise
        log.info("session %s: joined by %s", session.id, ", ".join(d.name for d in new) or "a /start for its TVs")

    async def _start(self, request: StartRequest, devices: list[Device]) -> Session:
        uuids = {d.uuid for d in devices}
        ending = [s for s in self.active() if s.active_screens() and {x.uuid for x in s.active_screens()} <= uuids and not s.stream_only]
        if len(self.active()) - len(ending) >= self.settings.max_sessions:
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        inherited = await self._take_over(devices)
        for old in ending:
            await old.wait_ended()
        if self._nursery is None:
            raise ShuttingDown("the service is shutting down")
        if len(self.active()) >= self.settings.max_sessions:  # others started while we waited
            raise TooManySessions(f"{self.settings.max_sessions} sessions are already running (PAGECAST_MAX_SESSIONS); stop one first")
        session = Session(
            request, self.settings, devices=devices, base_url=self.base_url, inherited=inherited, encoders=self.encoders, parts=self.parts,
        )
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
        return next((s for s in self.active() if s.screen_on(device.uuid) is not None), None)

    def stop(self, session_id: str | None = None, device: str | None = None, reason: str = "stopped by API") -> list[Session]:
        """The sessions now stopping, or losing the named TV. A ``device`` takes that TV off
        whatever shows on it: a session whose last screen it was ends. A ``device`` that names
        no session's TV and no known device raises NotFound (a typo must not look like a stop
        that worked)."""
        if session_id is not None:
            session = self.sessions.get(session_id)
            targets = [session] if session is not None and session.active else []
        elif device is not None:
            targets = []
            for s in self.active():
                for screen in s.active_screens():
                    if names(screen.device, device):
                        s.remove_screen(screen.uuid, reason)
                        targets.append(s)
            if not targets and self.directory is not None and not self.directory.knows(device):
                raise self.directory.unknown(device)
            return targets
        else:
            targets = self.active()
        for s in targets:
            s.stop(reason)
        return targets

    def remove_screen(self, session: Session, device: str, reason: str = "removed by API") -> Screen:
        """Take the TV ``device`` names off ``session`` (its ``done`` is set once it has left and
        the TV was given back); NotFound if it shows none of it."""
        screen = next((x for x in session.active_screens() if names(x.device, device)), None)
        if screen is None:
            on = ", ".join(repr(x.device.name) for x in session.active_screens()) or "none"
            raise NotFound(f"session {session.id} shows nothing on {device!r}; its screens: {on}")
        session.remove_screen(screen.uuid, reason)
        return screen

    async def add_screen(self, session: Session, request: StartRequest) -> None:
        """A TV (or several) joins ``session``, each taken over from whatever shows on it."""
        if not session.active:
            raise Conflict(f"session {session.id} has ended; start a new one")
        devices = []
        for spec in request.devices:
            found = await self.directory.resolve(spec)
            if all(d.uuid != found.uuid for d in devices):
                devices.append(found)
        async with contextlib.AsyncExitStack() as stack:
            for device in sorted(devices, key=lambda d: d.uuid):
                await stack.enter_async_context(self._device_locks.setdefault(device.uuid, trio.Lock()))
            await self._join(session, request, devices)

    def _forget_old(self) -> None:
        ended = [sid for sid, s in self.sessions.items() if s.state.ended]
        for sid in ended[: max(0, len(ended) - ENDED_HISTORY)]:
            self.retired.add(self.sessions.pop(sid).figures())

