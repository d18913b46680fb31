"""What a Cast TV shows, and what it means for a session: its app, its media, whether a person
may be watching, whether the TV ended the session, what to give back.

The Cast watcher (``session/cast.py``) feeds what the TV says to the decisions here and carries
out what they return; they read no clock (times are arguments) and talk to no TV, so every
"what does this status mean" is tested by tables (``tests/test_screen.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .policy import RECAST_BUDGET, Backoff, gave_up

DMR_APP_ID = "CC1AD845"  # the Default Media Receiver
IDLE_SCREEN_APP_IDS = {"E8C28D3C"}  # Backdrop (ambient / idle screen)
NS_MEDIA = "urn:x-cast:com.google.cast.media"


@dataclass(frozen=True)
class Media:
    """A copy of pychromecast's MediaStatus (which it mutates in place on its own thread)."""

    media_session_id: int | None
    player_state: str
    idle_reason: str | None
    content_id: str | None
    content_type: str | None
    stream_type: str | None
    current_time: float
    title: str | None

    @classmethod
    def of(cls, status: Any) -> "Media":
        return cls(
            media_session_id=status.media_session_id,
            player_state=status.player_state,
            idle_reason=status.idle_reason,
            content_id=status.content_id,
            content_type=status.content_type,
            stream_type=status.stream_type,
            current_time=float(status.current_time or 0.0),
            title=(status.media_metadata or {}).get("title") if isinstance(status.media_metadata, dict) else None,
        )

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> "Media | None":
        entries = data.get("status") or []
        if not entries:
            return None
        s = entries[0]
        media = s.get("media") or {}
        return cls(
            media_session_id=s.get("mediaSessionId"),
            player_state=s.get("playerState", "UNKNOWN"),
            idle_reason=s.get("idleReason"),
            content_id=media.get("contentId"),
            content_type=media.get("contentType"),
            stream_type=media.get("streamType"),
            current_time=float(s.get("currentTime") or 0.0),
            title=(media.get("metadata") or {}).get("title"),
        )

    @property
    def active(self) -> bool:
        return self.player_state in ("PLAYING", "BUFFERING", "PAUSED")

    def public(self) -> dict[str, Any]:
        return {
            "player_state": self.player_state,
            "idle_reason": self.idle_reason,
            "content_id": self.content_id,
            "content_type": self.content_type,
            "stream_type": self.stream_type,
            "current_time": round(self.current_time, 1),
            "title": self.title,
        }


@dataclass(frozen=True)
class Screen:
    """What a TV is doing: its app, its media (if the app speaks the media namespace), power, volume."""

    app_id: str | None
    app_name: str | None
    app_session: str | None
    standby: bool | None
    active_input: bool | None
    volume: float
    muted: bool
    media: Media | None = None

    @classmethod
    def of(cls, status: Any, media: Media | None = None) -> "Screen":
        return cls(
            app_id=status.app_id, app_name=status.display_name, app_session=status.session_id,
            standby=status.is_stand_by, active_input=status.is_active_input,
            volume=float(status.volume_level), muted=bool(status.volume_muted), media=media,
        )

    @property
    def idle_screen(self) -> bool:
        return self.app_id is None or self.app_id in IDLE_SCREEN_APP_IDS

    def busy(self, ours: Callable[[Media], bool]) -> bool:
        """A person is (or may be) watching something: any app but the idle screen, except a
        Default Media Receiver with no media playing, or playing our own stream. A TV that says
        it is in standby and not the active input is not being watched."""
        if self.standby is True and self.active_input is False:
            return False
        if self.idle_screen:
            return False
        if self.app_id == DMR_APP_ID:
            return self.media is not None and self.media.active and not ours(self.media)
        return True

    def describe(self) -> str:
        if self.idle_screen:
            return "its idle screen"
        what = self.app_name or self.app_id or "an app"
        if self.media is not None and self.media.active:
            title = self.media.title or self.media.content_id
            return f"{title!r} ({self.media.player_state.lower()}) in {what}"
        return what

    def public(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "app": self.app_name,
            "standby": self.standby,
            "active_input": self.active_input,
            "volume": round(self.volume, 3),
            "muted": self.muted,
            "media": self.media.public() if self.media else None,
        }


@dataclass(frozen=True)
class Handover:
    """What a session replaced on its TV passes to the one replacing it: the screen from before
    either of them, and whether the TV's app and volume are ours to give back."""

    previous: Screen | None
    volume_set: bool
    #: The TV is muted by a quiet start that had not played yet: the new session unmutes it.
    muted: bool = False


@dataclass
class Stream:
    """What the TV is asked to play."""

    url: str
    content_type: str
    title: str
    media_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_session(cls, url: str, mode: str, title: str) -> "Stream":
        if mode == "fmp4":
            return cls(url, "video/mp4", title)
        # The Default Media Receiver's HLS engine needs to be told the segments are fMP4, or it
        # loads endlessly (pychromecast#420); Home Assistant sends the same hints.
        return cls(url, "application/vnd.apple.mpegurl", title, {"hlsSegmentFormat": "fmp4", "hlsVideoSegmentFormat": "fmp4"})


@dataclass(frozen=True)
class ReceiverView:
    """The receiver status the decisions read: a copy of pychromecast's CastStatus (read by
    attribute, so none of its types reach the core)."""

    app_id: str | None
    session_id: str | None
    standby: bool | None
    active_input: bool | None
    display_name: str | None

    @classmethod
    def of(cls, status: Any) -> ReceiverView | None:
        if status is None:
            return None
        return cls(
            app_id=status.app_id, session_id=status.session_id, standby=status.is_stand_by,
            active_input=status.is_active_input, display_name=status.display_name,
        )

    @property
    def idle_screen(self) -> bool:
        return self.app_id is None or self.app_id in IDLE_SCREEN_APP_IDS

    @property
    def name(self) -> str:
        return self.display_name or self.app_id or "an app"

    def runs(self, app_session: str | None) -> bool:
        """The Default Media Receiver we launched is still the TV's app."""
        return self.app_id == DMR_APP_ID and self.session_id == app_session


def shows(view: ReceiverView | None) -> str:
    """What the TV's app is, in words (a TV that did not say counts as idle)."""
    return "its idle screen" if view is None or view.idle_screen else view.name


@dataclass(frozen=True)
class OurCast:
    """What a session holds on its TV: where this service's streams live, the receiver app
    session it launched and the media session it loaded (None: not yet, or not any more), and
    the standby flag last seen (a TV going to standby is told from one that was in it)."""

    streams: str
    app_session: str | None = None
    media_session: int | None = None
    standby_seen: bool | None = None

    @classmethod
    def of_stream(cls, stream: Stream) -> OurCast:
        return cls(streams=stream.url.rsplit("/streams/", 1)[0] + "/streams/")

    def owns(self, media: Media) -> bool:
        """Media this service streams (this session's, or one it replaced): never a person's."""
        return bool(media.content_id) and media.content_id.startswith(self.streams)


def _nothing_of_theirs(screen: Screen, ours: OurCast) -> bool:
    """The idle screen, or the Default Media Receiver with nothing playing but our stream."""
    if screen.idle_screen:
        return True
    return screen.app_id == DMR_APP_ID and (screen.media is None or not screen.media.active or ours.owns(screen.media))


# --- what the watcher is told to do ---------------------------------------------------------


@dataclass(frozen=True)
class DeviceStop:
    """The TV ended the session (a person's decision, or gone for good): it stops with
    ``reason``, nothing is given back and nothing re-cast, even with keep_on."""

    reason: str


@dataclass(frozen=True)
class Interrupted:
    """Our media was replaced: by another sender's media, or by an app whose receiver status
    follows right after. Wait briefly for that status, then ask ``interrupted_by``."""


@dataclass(frozen=True)
class Recast:
    """Launch and load the stream again; ``recasts`` is the re-cast history to keep."""

    recasts: tuple[float, ...] = ()


@dataclass(frozen=True)
class Fail:
    """The TV failed the stream in a way that fails the session (a CastError with ``message``)."""

    message: str


@dataclass(frozen=True)
class Resume:
    """The TV kept our stream across the loss: watch on, in ``state``."""

    state: str


# --- what a status means --------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverVerdict:
    """What a receiver status meant: ``ours`` as it stands after it (the standby last seen),
    and ``ended`` when the TV ended the session with it."""

    ours: OurCast
    ended: DeviceStop | None = None


def judge_receiver(view: ReceiverView | None, ours: OurCast) -> ReceiverVerdict:
    """A receiver status after our LAUNCH: our app closed, another app, or standby end the
    session. Judge the device's current status, not the event's: events queued before our
    LAUNCH describe the app we replaced."""
    if view is None or ours.app_session is None:
        return ReceiverVerdict(ours)
    ended = None
    if view.app_id != DMR_APP_ID or (view.session_id and view.session_id != ours.app_session):
        if view.idle_screen:
            ended = DeviceStop("casting was stopped on the TV (our app was closed)")
        else:
            ended = DeviceStop(f"another app took over the TV: {view.name}")
    elif view.standby is True and ours.standby_seen is False:
        ended = DeviceStop("the TV went to standby")
    return ReceiverVerdict(replace(ours, standby_seen=view.standby), ended)


def left_our_app(view: ReceiverView | None, app_session: str | None) -> DeviceStop | None:
    """Before the LOAD: a person stopped casting or opened an app while the page loaded (a LOAD
    now would make pychromecast launch the receiver again over them)."""
    if view is not None and view.runs(app_session):
        return None
    return DeviceStop(f"the TV left our app before the stream was live (now at {shows(view)})")


@dataclass(frozen=True)
class MediaVerdict:
    """What a media status means for the session. ``mine`` False: another media session's
    status, which changes nothing. ``then``: what the media ending asks for, if it ended."""

    mine: bool
    player_state: str | None
    stalled: bool = False
    playing: bool = False
    then: DeviceStop | Interrupted | Recast | Fail | None = None


def judge_media(
    media: Media, ours: OurCast, player_state: str | None, *, keep_on: bool, recasts: tuple[float, ...], now: float, device: str,
) -> MediaVerdict:
    """``player_state`` is the one shown so far; ``recasts`` the times of re-casts after player
    errors; ``now`` the time of this status."""
    if ours.media_session is None or media.media_session_id != ours.media_session:
        return MediaVerdict(False, player_state)
    stalled = media.player_state == "BUFFERING" and player_state == "PLAYING"
    # IDLE without a reason is a receiver still loading (extendedStatus LOADING).
    if media.player_state != "UNKNOWN" and (media.player_state != "IDLE" or media.idle_reason):
        player_state = media.player_state
    then = None
    if media.player_state == "IDLE" and media.idle_reason:
        then = media_ended(media.idle_reason, keep_on=keep_on, recasts=recasts, now=now, device=device)
    return MediaVerdict(True, player_state, stalled, media.player_state == "PLAYING", then)


def media_ended(reason: str, *, keep_on: bool, recasts: tuple[float, ...], now: float, device: str) -> DeviceStop | Interrupted | Recast | Fail:
    """CANCELLED and INTERRUPTED are a person's doing; anything else (ERROR, FINISHED) is the
    player's, which keep_on answers with a re-cast, at most RECAST_BUDGET allows."""
    if reason == "CANCELLED":
        return DeviceStop("stopped on the TV (remote or another sender sent STOP)")
    if reason == "INTERRUPTED":
        return Interrupted()
    if not keep_on:
        return Fail(f"{device} stopped playing the stream: {reason} (set keep_on to re-cast)")
    verdict = RECAST_BUDGET.decide(recasts, now)
    if not verdict.restart:
        return Fail(f"{device} stopped playing the stream {verdict.failures} times in {RECAST_BUDGET.window:g} s (last: {reason})")
    return Recast(verdict.history)


def unstick(buffering_since: float | None, now: float, *, limit: float, recasts: tuple[float, ...]) -> Recast | None:
    """A TV whose player has been BUFFERING our stream since ``buffering_since`` (after it had
    played) gets the stream loaded again once that lasts ``limit`` seconds (0: never): a live
    player can stay stuck after a gap or a discontinuity while the stream itself flows on.
    Within RECAST_BUDGET, shared with re-casts after player errors; past it, it is left be."""
    if buffering_since is None or limit <= 0 or now - buffering_since < limit:
        return None
    verdict = RECAST_BUDGET.decide(recasts, now)
    return Recast(verdict.history) if verdict.restart else None


def interrupted_by(view: ReceiverView | None) -> DeviceStop:
    """Who interrupted our media, once the receiver status had its chance to name an app."""
    if view is not None and view.app_id != DMR_APP_ID and not view.idle_screen:
        return DeviceStop(f"another app took over the TV: {view.name}")
    return DeviceStop("another sender loaded other media on the TV")


# --- losing the TV --------------------------------------------------------------------------


def reconnect_step(
    attempt: int, lost_at: float, now: float, *, keep_on: bool, give_up: float, backoff: Backoff, device: str, lost_reason: str,
) -> float | DeviceStop:
    """Before reconnect ``attempt`` (0, 1, …): the seconds to wait first, by ``backoff``; without
    keep_on, a TV away longer than ``give_up`` seconds is gone for good."""
    if gave_up(lost_at, now, None if keep_on else give_up):
        return DeviceStop(f"{device} unreachable for {give_up:g} s ({lost_reason})")
    return backoff.delay(attempt)


def after_reconnect(screen: Screen, ours: OurCast, *, keep_on: bool, casts: int, lost_reason: str | None) -> Resume | Recast | DeviceStop:
    """Back in touch: our media still on means watch on; the idle screen or our idle app means
    re-cast (with keep_on, or if the stream was never loaded); anything else is a person's."""
    m = screen.media
    if screen.app_id == DMR_APP_ID and screen.app_session == ours.app_session and m is not None \
            and m.media_session_id == ours.media_session and m.active:
        return Resume("playing" if m.player_state == "PLAYING" else "casting")
    if _nothing_of_theirs(screen, ours):
        if keep_on or not casts:
            return Recast()
        return DeviceStop(f"the TV dropped the stream while unreachable ({lost_reason}); now at {screen.describe()}")
    return DeviceStop(f"the TV now shows {screen.describe()}; not interrupting it")


# --- a quiet start ---------------------------------------------------------------------------


def mute_before_launch(quiet: bool, screen: Screen | None) -> bool:
    """A quiet start mutes the TV before launching pagecast's app (a Nest Hub sounds a chime
    when an app starts), but never a TV muted already: that mute is a person's, not ours to lift."""
    return quiet and not (screen is not None and screen.muted)


# --- giving the screen back -----------------------------------------------------------------


@dataclass(frozen=True)
class SetVolume:
    level: float


@dataclass(frozen=True)
class StopApp:
    pass


@dataclass(frozen=True)
class Load:
    stream: Stream
    current_time: float | None = None  # None: at its live position


@dataclass(frozen=True)
class Launch:
    app_id: str


@dataclass(frozen=True)
class GiveBack:
    """Steps to carry out in order, and what they give back, in words (``given_back``)."""

    actions: tuple[SetVolume | StopApp | Load | Launch, ...]
    note: str


def should_give_back(took_screen: bool, ended_by_device: bool, handed_over: bool) -> bool:
    """Only a screen we took, and only when neither the TV ended us (a person decided what it
    shows) nor a new session took it over from us."""
    return took_screen and not ended_by_device and not handed_over


def give_back_plan(now: ReceiverView | None, previous: Screen | None, ours: OurCast, volume_set: bool) -> GiveBack:
    """Put back what the TV showed before (``previous``): only over our own app, since a TV
    someone took over meanwhile is theirs now."""
    if now is None or now.app_id != DMR_APP_ID or (ours.app_session is not None and now.session_id != ours.app_session):
        return GiveBack((), f"left as it is: the TV already shows {shows(now)}")
    actions: list[SetVolume | StopApp | Load | Launch] = []
    notes = []
    if volume_set and previous is not None:
        actions.append(SetVolume(previous.volume))
        notes.append(f"volume back to {previous.volume:.2f}")
    if previous is None or _nothing_of_theirs(previous, ours):
        actions.append(StopApp())
        notes.insert(0, "back to the idle screen")
    elif previous.app_id == DMR_APP_ID and previous.media is not None and previous.media.content_id:
        m = previous.media
        live = (m.stream_type or "").upper() == "LIVE"
        actions.append(Load(Stream(m.content_id, m.content_type or "video/mp4", m.title or ""), None if live else m.current_time))
        notes.insert(0, f"reloaded {m.title or m.content_id!r}" + (" at its live position" if live else f" at {m.current_time:.0f} s"))
    else:
        actions.append(Launch(previous.app_id))
        notes.insert(0, f"relaunched {previous.app_name or previous.app_id}; what it was playing cannot be restored by a Cast sender")
    if previous is not None and previous.standby is True and previous.active_input is False:
        notes.append("the TV was in standby before; Cast cannot switch it off again")
    return GiveBack(tuple(actions), "; ".join(notes))
