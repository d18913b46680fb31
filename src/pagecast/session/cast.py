"""The Cast watcher: a session's hold on its TV, through a ``cast_link.Link``.

The link's events (pychromecast's callbacks, handed to Trio) are read by the watcher task in
the session's nursery; the link is closed (its thread joined) when the watcher leaves, however
it leaves.

The watcher takes the screen (recording what the TV was doing), casts the session's stream,
notices the TV ending it (stop on the remote, another app, standby: ``DeviceEnded``), survives
connection loss (reconnecting with backoff; re-casting only with ``keep_on`` and only over an idle
screen), and when the session ends for any reason but the TV's own or a handover, gives the
screen back. What each status means and what to do about it is ``core.screen``'s decision.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Awaitable, Callable, NoReturn

import trio

from ..core.device import Device
from ..core.errors import CastError, Conflict, DeviceEnded
from ..core.policy import Backoff
from ..core.request import CastOptions
from ..core.screen import (
    DMR_APP_ID, DeviceStop, Fail, Handover, Interrupted, Launch, Load, Media, OurCast, ReceiverView, Recast, Resume,
    Screen, SetVolume, StopApp, Stream, after_reconnect, give_back_plan, interrupted_by, judge_media, judge_receiver,
    left_our_app, mute_before_launch, reconnect_step, should_give_back, unstick,
)
from ..lowlevel.groups import one_error
from .cast_link import ConnectionChanged, LaunchFailed, Link, LinkEvent, LinkLost, LoadFailed, MediaChanged, ReceiverChanged

#: How often, with no event from the TV, the watcher checks whether its player is stuck.
STUCK_CHECK_INTERVAL = 1.0

log = logging.getLogger(__name__)

class CastWatcher:
    """The session's actor for its TV; ``run`` lives in the session's nursery. What each thing
    the TV says means, and what to give back, is decided in ``core.screen``; here it is carried
    out. ``run`` ends by cancellation (the session ended), ``DeviceEnded`` (the TV ended it) or
    ``CastError`` (the TV failed it); leaving gives the screen back when the core says so."""

    def __init__(
        self,
        device: Device,
        options: CastOptions,
        settings: Any,
        stream: Stream,
        *,
        session_id: str,
        inherited: Handover | None = None,
    ):
        self.device = device
        self.options = options
        self.settings = settings
        self.stream = stream
        self.session_id = session_id
        self.previous: Screen | None = inherited.previous if inherited else None  # what to give back
        self.screen: Screen | None = None
        self.state = "connecting"
        self.player_state: str | None = None
        self.casts = 0
        self.reconnects = 0
        self.stalls = 0
        self.reloads = 0  # the stream loaded again on a TV stuck buffering it
        self._buffering_since: float | None = None
        self.woke_from_standby = False
        self.device_stop: str | None = None
        self.given_back: str | None = None
        self.started_monotonic = trio.current_time()
        self.seconds_to_playing: float | None = None
        self.playing = trio.Event()
        self.lost_at: float | None = None
        self.lost_reason: str | None = None
        self._ours = OurCast.of_stream(stream)
        self._volume_set = inherited.volume_set if inherited else False
        self._muted = inherited.muted if inherited else False  # by our quiet start, until it plays
        # We started the receiver app (or took it over from the session we replaced): ours to
        # stop, even before a LOAD.
        self._launched = inherited is not None
        self._handed_over = False
        self._recasts: tuple[float, ...] = ()
        self._link: Link | None = None

    def hand_over(self) -> Handover:
        """A new session takes the TV over: it gives back what this one would have, and this one
        leaves the TV to it."""
        self._handed_over = True
        return Handover(self.previous, self._volume_set, self._muted)

    def status(self) -> dict[str, Any]:
        return {
            "device": self.device.name,
            "uuid": self.device.uuid,
            "address": self.device.host,
            "state": self.state,
            "player_state": self.player_state,
            "seconds_to_playing": self.seconds_to_playing,
            "casts": self.casts,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "reloads": self.reloads,
            "keep_on": self.options.keep_on,
            "quiet": self.options.quiet,
            "woke_from_standby": self.woke_from_standby,
            "lost": self.lost_reason if self.state == "reconnecting" else None,
            "stopped_by_device": self.device_stop,
            "previous": self.previous.public() if self.previous else None,
            "given_back": self.given_back,
        }

    # --- lifecycle --------------------------------------------------------------------------
    async def run(self, wait_stream: Callable[[], Awaitable[None]], task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Connect and check the device (errors here are the /start's answer), then cast and watch."""
        try:
            link = await self._first_connect()
            self._link = link
            task_status.started()
            step = self._cast(link, wait_stream, first=True)
            while True:
                try:
                    await step
                    await self._watch(link)
                except LinkLost as exc:
                    await link.aclose()
                    self._link, self._buffering_since = None, None
                    link = await self._reconnect(str(exc))
                    self._link = link
                    step = self._after_reconnect(link, wait_stream)
        finally:
            with trio.CancelScope(shield=True):
                await self._leave()

    async def _first_connect(self) -> Link:
        d = self.device
        link = Link(d, self.settings.cast_connect_timeout)
        try:
            await link.open()
        except LinkLost as exc:
            raise Conflict(f"{d.name} ({d.host}) is unreachable: {exc}") from None
        try:
            try:
                screen = await self._look(link)
            except (LinkLost, CastError) as exc:
                raise Conflict(f"{d.name} ({d.host}) did not say what it is playing: {exc}") from None
            if self.previous is None:
                self.previous = screen
            if self.options.if_idle and screen.busy(self._ours.owns):
                raise Conflict(f"{d.name} is showing {screen.describe()}; not interrupting it (if_idle)")
        except BaseException:
            await link.aclose()
            raise
        return link

    async def _look(self, link: Link) -> Screen:
        """The TV's app and, if it speaks the media namespace, its media. A media status the TV
        does not give raises: "unknown" must not pass for "nothing playing"."""
        media = await link.get_media()
        self.screen = Screen.of(link.status, media)
        self._ours = replace(self._ours, standby_seen=self.screen.standby)
        return self.screen

    async def _cast(self, link: Link, wait_stream: Callable[[], Awaitable[None]], first: bool = False) -> None:
        """Launch the Default Media Receiver (which wakes a TV in standby), set the volume, and
        once the stream is live, LOAD it."""
        self.state = "launching"
        before = link.receiver
        if before is not None and before.standby is True and before.active_input is not True:
            self.woke_from_standby = True
        if before is None or before.app_id != DMR_APP_ID or not first:
            self._launched = True
            if not self._muted and mute_before_launch(self.options.quiet, self.screen):
                self._muted = True  # before asking: a mute cut short by a cancel is still lifted
                await link.set_muted(True)
            await link.launch(DMR_APP_ID)
        launched = link.receiver
        self._ours = replace(self._ours, app_session=launched.session_id if launched else None)
        if self.options.volume is not None:
            await link.set_volume(self.options.volume)
            self._volume_set = True
        self.state = "waiting for the stream"
        while True:
            with trio.move_on_after(0.25) as waiting:
                await wait_stream()
            left = left_our_app(link.receiver, self._ours.app_session)
            if left is not None:
                self._ended(left.reason)
            if not waiting.cancelled_caught:
                break
        self.state = "loading"
        try:
            media = await link.load(self.stream)
        except CastError as exc:
            raise CastError(f"{self.device.name} could not load the stream: {exc}") from None
        except LinkLost as exc:
            # A receiver answers LOAD only once the media is loaded: a slow answer from a TV
            # that still answers status requests is the TV failing, not the network.
            await link.get_status(self.settings.cast_liveness_timeout)
            raise CastError(f"{self.device.name} did not load the stream: {exc}") from None
        loaded = link.receiver
        self._ours = replace(
            self._ours,
            app_session=loaded.session_id if loaded else None,
            media_session=media.media_session_id if media else None,
            standby_seen=loaded.standby if loaded else None,
        )
        if media is not None and media.player_state != "UNKNOWN":
            self.player_state = media.player_state
        self.casts += 1
        self.state = "casting"
        log.info("session %s: casting to %s (%s)", self.session_id, self.device.name, self.device.host)

    async def _watch(self, link: Link) -> None:
        """Follow the device until the link is lost (LinkLost) or the session is cancelled; the
        TV ending or failing the session raises DeviceEnded or CastError alone, not in a group."""
        with one_error():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._liveness, link)
                try:
                    while True:
                        event = None
                        with trio.move_on_after(STUCK_CHECK_INTERVAL):  # no event: time to check for a stuck player
                            try:
                                event = await link.events.receive()
                            except trio.EndOfChannel:
                                break
                        # A link found dead meanwhile (liveness) interrupts a handler waiting on it
                        # (a re-cast's LOAD can wait 30 s).
                        with trio.CancelScope() as link.handling:
                            try:
                                if event is not None:
                                    await self._on_event(link, event)
                                await self._unstick(link)
                            except LinkLost as exc:
                                link.mark_lost(str(exc))
                        if link.lost:
                            break
                finally:
                    nursery.cancel_scope.cancel()
        raise LinkLost(link.lost or "connection closed")

    async def _liveness(self, link: Link) -> None:
        """pychromecast's heartbeat needs ~20 s to call a silent device dead; a status request
        every ``cast_liveness_interval`` answered within ``cast_liveness_timeout`` does it in a few."""
        interval, timeout = self.settings.cast_liveness_interval, self.settings.cast_liveness_timeout
        if interval <= 0:
            return  # off: only pychromecast's heartbeat (the benchmark's reference)
        while True:
            await trio.sleep(interval)
            try:
                await link.get_status(timeout)
            except (LinkLost, CastError) as exc:
                link.mark_lost(f"no answer to a status request: {exc}")
                return

    async def _on_event(self, link: Link, event: LinkEvent) -> None:
        match event:
            case ConnectionChanged(status):
                if status in ("LOST", "DISCONNECTED", "FAILED"):
                    link.mark_lost(f"connection {status.lower()}")
            case ReceiverChanged():
                status = link.status
                if status is None:
                    return
                self.screen = Screen.of(status, self.screen.media if self.screen else None)
                verdict = judge_receiver(ReceiverView.of(status), self._ours)
                self._ours = verdict.ours
                if verdict.ended is not None:
                    self._ended(verdict.ended.reason)
            case MediaChanged(media):
                await self._on_media(link, media)
            case LoadFailed(code):
                raise CastError(f"{self.device.name} refused the stream: LOAD_FAILED (error {code})")
            case LaunchFailed(reason):
                raise CastError(f"{self.device.name} could not launch the Default Media Receiver: LAUNCH_ERROR {reason}")
            case _:
                raise AssertionError(f"an event the watcher does not handle: {event!r}")

    async def _on_media(self, link: Link, media: Media) -> None:
        if self.screen is not None:
            self.screen = replace(self.screen, media=media)
        verdict = judge_media(
            media, self._ours, self.player_state,
            keep_on=self.options.keep_on, recasts=self._recasts, now=trio.current_time(), device=self.device.name,
        )
        if not verdict.mine:
            return
        if verdict.stalled:
            self.stalls += 1
            self._buffering_since = trio.current_time()
        elif verdict.player_state != "BUFFERING":
            self._buffering_since = None
        self.player_state = verdict.player_state
        if verdict.playing:
            if self._muted:  # the sound comes back before anyone is told it plays
                await link.set_muted(False)
                self._muted = False
            self.state = "playing"
            self.playing.set()
            if self.seconds_to_playing is None:
                self.seconds_to_playing = round(trio.current_time() - self.started_monotonic, 3)
                log.info("session %s: playing on %s after %.2f s", self.session_id, self.device.name, self.seconds_to_playing)
        then = verdict.then
        if isinstance(then, Interrupted):
            # The receiver status naming the app that took the screen, if one did, follows right after.
            with trio.move_on_after(0.5):
                while (view := link.receiver) is not None and view.runs(self._ours.app_session):
                    await trio.sleep(0.05)
            then = interrupted_by(link.receiver)
        if isinstance(then, DeviceStop):
            self._ended(then.reason)
        elif isinstance(then, Fail):
            raise CastError(then.message)
        elif isinstance(then, Recast):
            self._recasts = then.recasts
            log.warning("session %s: %s ended the stream (%s); re-casting (keep_on)", self.session_id, self.device.name, media.idle_reason)
            self._ours = replace(self._ours, media_session=None)
            await self._cast(link, _ready)

    async def _unstick(self, link: Link) -> None:
        """Load the stream again on a TV stuck buffering it, when ``core.screen.unstick`` says so."""
        verdict = unstick(self._buffering_since, trio.current_time(), limit=self.settings.cast_stuck_timeout, recasts=self._recasts)
        if verdict is None:
            return
        stuck_for = trio.current_time() - self._buffering_since
        self._recasts, self._buffering_since = verdict.recasts, None
        self.reloads += 1
        log.warning(
            "session %s: %s has been buffering the stream for %.0f s; loading it again", self.session_id, self.device.name, stuck_for,
            extra={"fields": {"event": "reload", "session": self.session_id, "device": self.device.name, "stuck_seconds": round(stuck_for, 1)}},
        )
        self._ours = replace(self._ours, media_session=None)
        await self._cast(link, _ready)

    def _ended(self, reason: str) -> NoReturn:
        """The TV ended the session: record why, and end ``run`` with DeviceEnded (its leaving
        then gives nothing back)."""
        if self.device_stop is None:
            self.device_stop = reason
            self.state = "stopped by the TV"
            log.info(
                "session %s: %s on %s", self.session_id, reason, self.device.name,
                extra={"fields": {"event": "device_stop", "session": self.session_id, "device": self.device.name, "reason": reason}},
            )
        raise DeviceEnded(self.device_stop)

    async def _reconnect(self, reason: str) -> Link:
        """Reconnect with growing waits; without keep_on, a TV away for ``cast_give_up`` ends the session."""
        self.state = "reconnecting"
        self.lost_reason = reason
        self.lost_at = trio.current_time()
        self.player_state = None
        log.warning("session %s: lost %s: %s; reconnecting", self.session_id, self.device.name, reason)
        backoff = Backoff(first=1.0, cap=self.settings.cast_backoff_max)
        attempt = 0
        while True:
            step = reconnect_step(
                attempt, self.lost_at, trio.current_time(), keep_on=self.options.keep_on,
                give_up=self.settings.cast_give_up, backoff=backoff, device=self.device.name, lost_reason=reason,
            )
            if isinstance(step, DeviceStop):
                self._ended(step.reason)
            await trio.sleep(step)
            link = Link(self.device, self.settings.cast_connect_timeout)
            try:
                await link.open()
                self.reconnects += 1
                log.info("session %s: reconnected to %s after %.1f s", self.session_id, self.device.name, trio.current_time() - self.lost_at)
                return link
            except LinkLost as exc:
                await link.aclose()
                log.debug("session %s: %s still unreachable: %s", self.session_id, self.device.name, exc)
            attempt += 1

    async def _after_reconnect(self, link: Link, wait_stream: Callable[[], Awaitable[None]]) -> None:
        screen = await self._look(link)
        then = after_reconnect(screen, self._ours, keep_on=self.options.keep_on, casts=self.casts, lost_reason=self.lost_reason)
        if isinstance(then, Resume):
            self.state = then.state
        elif isinstance(then, Recast):
            log.info("session %s: %s is back at %s; re-casting (keep_on)", self.session_id, self.device.name, screen.describe())
            self._ours = replace(self._ours, media_session=None)
            await self._cast(link, wait_stream)
        else:
            self._ended(then.reason)

    async def _leave(self) -> None:
        """Give the screen back (when the core says it is ours to give), then close the link."""
        try:
            if self._muted and self._link is not None and not self._handed_over:
                # Whatever ends a quiet start before it played, the TV gets its sound back.
                with trio.move_on_after(self.settings.cast_restore_timeout):
                    await self._link.set_muted(False)
                    self._muted = False
            took_screen = bool(self.casts or self._launched or self._volume_set)
            if not should_give_back(took_screen, ended_by_device=self.device_stop is not None, handed_over=self._handed_over):
                pass
            elif self._link is None:
                self.given_back = f"not given back: {self.device.name} was unreachable"
            else:
                with trio.move_on_after(self.settings.cast_restore_timeout) as scope:
                    self.given_back = await self._give_back(self._link)
                if scope.cancelled_caught:
                    self.given_back = f"could not give the TV back within {self.settings.cast_restore_timeout:g} s"
        except (LinkLost, CastError) as exc:
            self.given_back = f"could not give the TV back: {exc}"
        finally:
            if self.given_back:
                log.info("session %s: %s: %s", self.session_id, self.device.name, self.given_back)
            if self._link is not None:
                await self._link.aclose()
                self._link = None
            if self.state not in ("stopped by the TV",):
                self.state = "done"

    async def _give_back(self, link: Link) -> str:
        # Ask first: the status pychromecast holds can predate a LAUNCH still in flight when
        # the session was stopped, and would say the TV is already back at its idle screen.
        await link.get_status(self.settings.cast_liveness_timeout)
        plan = give_back_plan(link.receiver, self.previous, self._ours, self._volume_set)
        for action in plan.actions:
            match action:
                case SetVolume(level):
                    await link.set_volume(level)
                case StopApp():
                    await link.stop_app()
                case Load(stream, current_time):
                    await link.load(stream, current_time=current_time)
                case Launch(app_id):
                    await link.launch(app_id)
        return plan.note


async def _ready() -> None:
    return None
