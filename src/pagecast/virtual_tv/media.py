"""The Default Media Receiver's media channel (``urn:x-cast:com.google.cast.media``): LOAD,
PLAY, PAUSE, SEEK, STOP, GET_STATUS, and the honest player states behind MEDIA_STATUS.

One :class:`MediaChannel` lives as long as one run of the app. Its player reports progress;
the state follows what the player shows: LOADING until the player has the media open (on the
wire: IDLE with ``extendedStatus.playerState`` LOADING), BUFFERING until frames advance,
PLAYING only while they do, BUFFERING again (a stall) after :data:`STALL_AFTER_S` without
progress, IDLE with FINISHED / ERROR / CANCELLED / INTERRUPTED when it ends.

A request that changes the state is answered by the MEDIA_STATUS broadcast to every sender,
carrying the request's ``requestId`` (a LOAD's once the media is loaded); GET_STATUS and
errors are answered to the requester alone. That is what Cast devices do in the pychromecast
debug logs quoted in ``docs/virtual-tv.md``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..lowlevel.groups import flatten
from .castv2 import Message
from .links import SenderLink
from .players import Playback, PlayerError
from .status import (
    LOAD_FAILED,
    MEDIA_UNKNOWN,
    MediaSession,
    normalized_media,
)

log = logging.getLogger(__name__)

#: No progress for this long while PLAYING is a stall: the state drops to BUFFERING.
STALL_AFTER_S = 1.5

#: (url, contentType, start seconds or None, start paused) → a playback.
PlaybackFactory = Callable[[str, "str | None", "float | None", bool], Playback]
#: (payload, requestId) → sent from the app's transport to every sender.
Broadcast = Callable[[dict[str, Any], int], None]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class _Playing:
    """A media session and the player behind it."""

    session: MediaSession
    playback: Playback
    load_request: tuple[SenderLink, Message] | None
    paused: bool = False
    last_position: float | None = None
    last_frames: int = 0
    last_advance: float = 0.0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)


class MediaChannel:
    """Media sessions of one Default Media Receiver run; players run in ``nursery``."""

    def __init__(
        self,
        nursery: trio.Nursery,
        make_playback: PlaybackFactory,
        broadcast: Broadcast,
        changed: Callable[[], None],
        refusal: Callable[[], str | None] = lambda: None,
    ):
        self.playing: _Playing | None = None
        self.loads = 0
        self._refusal = refusal
        self._nursery = nursery
        self._make_playback = make_playback
        self._broadcast = broadcast
        self._changed = changed
        self._session_ids = itertools.count(1)
        self._item_ids = itertools.count(1)

    @property
    def session(self) -> MediaSession | None:
        """The current media session, or the last one (ended) until the next LOAD."""
        return self.playing.session if self.playing else None

    def active(self) -> _Playing | None:
        return self.playing if self.playing is not None and not self.playing.session.ended else None

    def payload(self) -> dict[str, Any]:
        """MEDIA_STATUS: ``status`` is empty once the media session has ended."""
        playing = self.active()
        return {"type": "MEDIA_STATUS", "status": [playing.session.entry()] if playing else []}

    async def ended(self) -> None:
        """Wait until the player of the current session (if any) has stopped."""
        if self.playing is not None:
            await self.playing.done.wait()

    # ------------------------------------------------------------------ requests

    def handle(self, link: SenderLink, msg: Message) -> None:
        kind = msg.type
        if kind == "GET_STATUS":
            link.reply(msg, self.payload())
            return
        if kind == "LOAD":
            self._load(link, msg)
            return
        if kind not in ("PLAY", "PAUSE", "STOP", "SEEK", "SET_VOLUME"):
            link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND"})
            return
        playing = self.active()
        if playing is None or msg.payload.get("mediaSessionId") != playing.session.session_id:
            link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_MEDIA_SESSION_ID"})
            return
        session = playing.session
        if kind == "STOP":
            self.end("CANCELLED", request_id=msg.request_id)
            return
        if kind == "SET_VOLUME":
            if not session.volume.apply(msg.payload):
                link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
                return
        elif kind == "SEEK":
            target = _number(msg.payload.get("currentTime"))
            relative = _number(msg.payload.get("relativeTime"))
            if relative is not None:
                target = session.current_time + relative
            if target is None:
                link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
                return
            playing.playback.seek(target)
            session.current_time = target
            playing.last_position = None
            resume = msg.payload.get("resumeState")
            if resume == "PLAYBACK_PAUSE":
                self._pause(playing)
            elif resume == "PLAYBACK_START" or not playing.paused:
                self._resume(playing)
                if session.player_state == "PLAYING":
                    session.player_state = "BUFFERING"
        elif kind == "PAUSE":
            self._pause(playing)
        elif kind == "PLAY":
            self._resume(playing)
        self._broadcast(self.payload(), msg.request_id)
        self._changed()

    def _pause(self, playing: _Playing) -> None:
        playing.paused = True
        playing.playback.pause()
        if playing.session.player_state != "LOADING":
            playing.session.player_state = "PAUSED"

    def _resume(self, playing: _Playing) -> None:
        playing.paused = False
        playing.playback.resume()
        playing.last_advance = trio.current_time()
        if playing.session.player_state == "PAUSED":
            playing.session.player_state = "PLAYING" if playing.session.started else "BUFFERING"

    def _load(self, link: SenderLink, msg: Message) -> None:
        media = msg.payload.get("media")
        url = (media.get("contentUrl") or media.get("contentId")) if isinstance(media, dict) else None
        if not isinstance(media, dict) or not isinstance(url, str) or not url:
            link.reply(msg, {"type": "INVALID_REQUEST", "reason": "INVALID_PARAMS"})
            return
        self.loads += 1
        item_id = next(self._item_ids)
        refusal = self._refusal()
        if refusal is not None:
            log.info("refusing LOAD of %s: %s", url, refusal)
            link.reply(msg, {"type": "LOAD_FAILED", "itemId": item_id, "reason": refusal, "detailedErrorCode": LOAD_FAILED})
            self._changed()
            return
        self.end("INTERRUPTED")
        content_type = media.get("contentType") if isinstance(media.get("contentType"), str) else None
        autoplay = msg.payload.get("autoplay", True) is not False
        session = MediaSession(next(self._session_ids), normalized_media(media), item_id)
        playback = self._make_playback(url, content_type, _number(msg.payload.get("currentTime")), not autoplay)
        playing = _Playing(session, playback, (link, msg), last_advance=trio.current_time())
        self.playing = playing
        log.info("LOAD %s (%s) as media session %d", url, content_type, session.session_id)
        if not autoplay:
            self._pause(playing)
        self._nursery.start_soon(self._play, playing)
        self._broadcast(self.payload(), 0)
        self._changed()

    # ------------------------------------------------------------------ playing

    async def _play(self, playing: _Playing) -> None:
        try:
            with playing.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_stalls, playing)
                    reason, error = await self._outcome(playing)
                    nursery.cancel_scope.cancel()
                if error is not None:
                    log.warning("media session %d failed: %s", playing.session.session_id, error)
                self.end(reason, error=error, playing=playing)
        finally:
            playing.done.set()

    async def _outcome(self, playing: _Playing) -> tuple[str, PlayerError | None]:
        try:
            await playing.playback.run(partial(self._on_progress, playing))
        except Exception as exc:  # noqa: BLE001 - any player failure is the media's ERROR
            leaves = flatten(exc)
            error = next((leaf for leaf in leaves if isinstance(leaf, PlayerError)), None)
            return "ERROR", error or PlayerError(f"{type(leaves[0]).__name__}: {leaves[0]}", MEDIA_UNKNOWN)
        return "FINISHED", None

    def _on_progress(self, playing: _Playing, position: float, frames: int) -> None:
        session = playing.session
        if session.ended:
            return
        new_frames = frames - playing.last_frames if frames >= playing.last_frames else frames
        moved = playing.last_position is not None and position > playing.last_position + 0.01
        advanced = new_frames > 0 or moved
        if moved:
            session.seconds_played += min(position - playing.last_position, 2.0)  # type: ignore[operator]
        session.frames += max(new_frames, 0)
        session.current_time = position
        playing.last_frames, playing.last_position = frames, position
        if advanced:
            playing.last_advance = trio.current_time()
        if session.player_state == "LOADING":
            session.player_state = "PAUSED" if playing.paused else "PLAYING" if advanced else "BUFFERING"
            session.started = advanced
            playing.last_advance = trio.current_time()
            self._answer_load(playing)
        elif advanced and session.player_state == "BUFFERING" and not playing.paused:
            session.player_state = "PLAYING"
            session.started = True
            self._broadcast(self.payload(), 0)
        self._changed()

    async def _watch_stalls(self, playing: _Playing) -> None:
        session = playing.session
        while True:
            await trio.sleep(0.25)
            if session.player_state == "PLAYING" and trio.current_time() - playing.last_advance > STALL_AFTER_S:
                log.info("media session %d stalled at %.2f s", session.session_id, session.current_time)
                session.player_state = "BUFFERING"
                session.stalls += 1
                self._broadcast(self.payload(), 0)
                self._changed()

    def _answer_load(self, playing: _Playing) -> None:
        """The media is loaded: the LOAD's answer is the status broadcast with its requestId."""
        if playing.load_request is not None:
            _, msg = playing.load_request
            playing.load_request = None
            self._broadcast(self.payload(), msg.request_id)

    def end(self, reason: str | None, *, error: PlayerError | None = None, request_id: int = 0, playing: _Playing | None = None) -> None:
        """End the current media session with ``reason``, told to every sender (``request_id``:
        the STOP that asked for it); None ends it silently, as when the app itself goes away."""
        playing = playing or self.playing
        if playing is None or playing is not self.playing or playing.session.ended:
            return
        session = playing.session
        session.player_state = "IDLE"
        session.idle_reason = reason
        if error is not None:
            session.error = str(error)
            session.detailed_error_code = error.detailed_error_code
        playing.scope.cancel()
        if playing.load_request is not None:
            link, msg = playing.load_request
            playing.load_request = None
            if reason == "ERROR":
                link.reply(msg, {"type": "LOAD_FAILED", "itemId": session.item_id, "detailedErrorCode": session.detailed_error_code or MEDIA_UNKNOWN})
            else:
                link.reply(msg, {"type": "LOAD_CANCELLED", "itemId": session.item_id})
        if reason is not None:
            self._broadcast({"type": "MEDIA_STATUS", "status": [session.entry()]}, request_id)
        self._changed()
