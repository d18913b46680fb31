"""What the device is, as Cast senders see it: apps, sessions, media, and their status
messages. I/O-free; the field names and values follow what pychromecast 14 parses
(``controllers/receiver.py::_parse_status``, ``controllers/media.py::MediaStatus.update``)
and the Web Receiver message reference.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .castv2 import NS_MEDIA

APP_MEDIA_RECEIVER = "CC1AD845"
APP_BACKDROP = "E8C28D3C"
APP_YOUTUBE = "233637DE"

#: PAUSE | SEEK | STREAM_VOLUME | STREAM_MUTE | EDIT_TRACKS | PLAYBACK_RATE, the Web Receiver's
#: ALL_BASIC_MEDIA (pychromecast ``CMD_SUPPORT_ALL_BASIC_MEDIA``).
ALL_BASIC_MEDIA = 12303

#: Web Receiver DetailedErrorCode values we report (pychromecast ``MEDIA_PLAYER_ERROR_CODES``
#: and developers.google.com/cast/docs/web_receiver/error_codes).
MEDIA_UNKNOWN = 100
MEDIA_DECODE = 102
MEDIA_NETWORK = 103
MEDIA_SRC_NOT_SUPPORTED = 104
SEGMENT_NETWORK = 301
HLS_NETWORK_MASTER_PLAYLIST = 311
HLS_MANIFEST_PLAYLIST = 412
LOAD_FAILED = 905

@dataclass(frozen=True)
class AppSpec:
    """An app the device can run: the namespaces it speaks decide what senders connect to."""

    app_id: str
    name: str
    namespaces: tuple[str, ...] = ()
    idle_screen: bool = False
    status_text: str = ""


KNOWN_APPS: dict[str, AppSpec] = {
    APP_MEDIA_RECEIVER: AppSpec(
        APP_MEDIA_RECEIVER,
        "Default Media Receiver",
        ("urn:x-cast:com.google.cast.cac", "urn:x-cast:com.google.cast.debugoverlay", "urn:x-cast:com.google.cast.broadcast", NS_MEDIA),
        status_text="Default Media Receiver",
    ),
    APP_BACKDROP: AppSpec(APP_BACKDROP, "Backdrop", ("urn:x-cast:com.google.cast.sse",), idle_screen=True),
    APP_YOUTUBE: AppSpec(APP_YOUTUBE, "YouTube", ("urn:x-cast:com.google.youtube.mdx",), status_text="YouTube"),
}


@dataclass
class App:
    """A running app. Web receivers use one id as both sessionId and transportId."""

    spec: AppSpec
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    @property
    def transport_id(self) -> str:
        return self.session_id

    @property
    def speaks_media(self) -> bool:
        return NS_MEDIA in self.spec.namespaces

    def entry(self) -> dict[str, Any]:
        entry = {
            "appId": self.spec.app_id,
            "appType": "WEB",
            "displayName": self.spec.name,
            "iconUrl": "",
            "isIdleScreen": self.spec.idle_screen,
            "launchedFromCloud": False,
            "namespaces": [{"name": ns} for ns in self.spec.namespaces],
            "sessionId": self.session_id,
            "transportId": self.transport_id,
            "universalAppId": self.spec.app_id,
        }
        if self.spec.status_text:
            entry["statusText"] = self.spec.status_text
        return entry


@dataclass
class Volume:
    level: float = 1.0
    muted: bool = False

    def entry(self) -> dict[str, Any]:
        return {"level": round(self.level, 4), "muted": self.muted}

    def apply(self, payload: dict[str, Any]) -> bool:
        """A SET_VOLUME's level and/or muted; False, and nothing changed, when it is malformed
        (the request is then refused with INVALID_PARAMS)."""
        wanted = parse_volume(payload)
        if wanted is None:
            return False
        level, muted = wanted
        if level is not None:
            self.level = min(max(level, 0.0), 1.0)
        if muted is not None:
            self.muted = muted
        return True


#: CastMessage protocol versions a CONNECT may offer (CASTV2_1_0 … CASTV2_1_3).
PROTOCOL_VERSIONS = range(4)


def negotiated_version(connect: dict[str, Any]) -> int | None:
    """The highest protocol version a CONNECT offers (``protocolVersion`` and/or
    ``protocolVersionList``), or None if it names none: then no CONNECTED is due."""
    offered = connect.get("protocolVersionList")
    versions = [v for v in offered if isinstance(v, int) and v in PROTOCOL_VERSIONS] if isinstance(offered, list) else []
    single = connect.get("protocolVersion")
    if isinstance(single, int) and single in PROTOCOL_VERSIONS:
        versions.append(single)
    if not versions and not isinstance(offered, list):
        return None
    return max(versions, default=0)


def parse_volume(payload: dict[str, Any]) -> tuple[float | None, bool | None] | None:
    """``{"volume": {"level": 0.5}}`` and/or ``{"muted": true}`` from SET_VOLUME; None if neither
    is there or either is the wrong type."""
    volume = payload.get("volume")
    if not isinstance(volume, dict):
        return None
    level, muted = volume.get("level"), volume.get("muted")
    if level is None and muted is None:
        return None
    if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float))):
        return None
    if muted is not None and not isinstance(muted, bool):
        return None
    return (float(level) if level is not None else None), muted


def receiver_status(app: App | None, volume: Volume, *, standby: bool) -> dict[str, Any]:
    """The ``status`` object of RECEIVER_STATUS. ``isStandBy`` is always present: pychromecast
    reads a missing one as *in standby* on video devices."""
    status: dict[str, Any] = {
        "isActiveInput": not standby,
        "isStandBy": standby,
        "userEq": {},
        "volume": {**volume.entry(), "controlType": "attenuation", "stepInterval": 0.05},
    }
    if app is not None:
        status["applications"] = [app.entry()]
    return status


@dataclass
class MediaSession:
    """One loaded media item and what playing it has shown so far. ``player_state`` is
    LOADING, BUFFERING, PLAYING, PAUSED or IDLE; LOADING goes on the wire as IDLE with
    ``extendedStatus.playerState`` LOADING, as the Web Receiver reports media it is loading."""

    session_id: int
    media: dict[str, Any]
    item_id: int
    player_state: str = "LOADING"
    idle_reason: str | None = None
    current_time: float = 0.0
    playback_rate: float = 1.0
    volume: Volume = field(default_factory=Volume)
    error: str | None = None
    detailed_error_code: int | None = None
    frames: int = 0
    seconds_played: float = 0.0
    stalls: int = 0
    started: bool = False

    @property
    def ended(self) -> bool:
        return self.player_state == "IDLE"

    def entry(self) -> dict[str, Any]:
        loading = self.player_state == "LOADING"
        entry: dict[str, Any] = {
            "mediaSessionId": self.session_id,
            "playbackRate": self.playback_rate,
            "playerState": "IDLE" if loading else self.player_state,
            "currentTime": round(self.current_time, 3),
            "supportedMediaCommands": ALL_BASIC_MEDIA,
            "volume": self.volume.entry(),
            "currentItemId": self.item_id,
            "repeatMode": "REPEAT_OFF",
            "media": self.media,
        }
        if self.idle_reason is not None:
            entry["idleReason"] = self.idle_reason
        if loading:
            entry["extendedStatus"] = {"playerState": "LOADING", "mediaSessionId": self.session_id, "media": self.media}
        return entry

    def stats(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "seconds_played": round(self.seconds_played, 3),
            "stalls": self.stalls,
            "error": self.error,
            "detailed_error_code": self.detailed_error_code,
        }


def normalized_media(media: dict[str, Any]) -> dict[str, Any]:
    """The media object as the receiver reports it back: what the sender sent (including
    ``hlsSegmentFormat`` / ``hlsVideoSegmentFormat``), with a duration for live streams."""
    out = dict(media)
    out.setdefault("streamType", "BUFFERED")
    if out.get("streamType") == "LIVE":
        out.setdefault("duration", -1)
    return out
