"""What a Cast TV shows, and what it means for a session: its app, its media, whether a person
may be watching, what to give back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

DMR_APP_ID = "CC1AD845"  # the Default Media Receiver
IDLE_SCREEN_APP_IDS = {"E8C28D3C"}  # Backdrop (ambient / idle screen)
NS_MEDIA = "urn:x-cast:com.google.cast.media"
RELOAD_BUDGET = (3, 60.0)  # with keep_on: at most 3 re-casts after player errors within 60 s


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
