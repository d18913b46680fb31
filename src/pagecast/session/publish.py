"""In-memory live publisher: FFmpeg's fMP4 output in, HLS playlist/segments and progressive fMP4 out.

The stream itself (segments, generations, retention, the playlist) is ``core.playlist``'s
``SegmentRing``; this adds what needs Trio: waiting for the first segment or keyframe, and
progressive viewers that wait for the next fragment. Nothing touches the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from ..core.playlist import HeldFragment, Segment, SegmentRing

__all__ = ["Follower", "HeldFragment", "Publisher", "PublisherEnded", "Segment"]


class PublisherEnded(Exception):
    """The stream ended before it ever went live."""


class Publisher(SegmentRing):
    """A session's live stream, with waits. ``feed`` is synchronous and meant for the task
    reading the encoder's stdout; every other method may be called from any task of the same
    Trio run. Options are ``SegmentRing``'s; the clocks default to the system's."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], float] = time.time, **options: Any) -> None:
        self._change = trio.Event()
        super().__init__(clock=clock, wallclock=wallclock, **options)

    def _on_change(self) -> None:
        self._change.set()
        self._change = trio.Event()

    async def _wait_for(self, ready: Callable[[], bool]) -> None:
        await trio.lowlevel.checkpoint()
        while not ready():
            await self._change.wait()

    async def wait_keyframe(self) -> None:
        """Return once a progressive viewer could start (a keyframe fragment exists): a
        progressive stream is live a segment earlier than a playlist."""
        await self._wait_for(lambda: self.has_keyframe or self.ended)
        if not self.has_keyframe:
            raise PublisherEnded("stream ended before its first keyframe")

    async def wait_live(self) -> None:
        """Return once the first segment is published; raise ``PublisherEnded`` if the stream
        ended without ever going live."""
        await self._wait_for(lambda: self.live or self.ended)
        if not self.live:
            raise PublisherEnded("stream ended before the first segment was complete")

    def follow(self) -> Follower:
        """Progressive fMP4 for one viewer; use as ``async for chunk in publisher.follow()``.

        See ``Follower``. The viewer counts from this call until the iterator finishes, is
        closed (``aclose``/``async with``), raises (e.g. is cancelled), or is garbage collected.
        """
        return Follower(self)


class Follower:
    """One viewer's progressive fMP4 (``core.playlist.Cursor``), waiting for each next fragment.

    Waits for the first keyframe fragment if there is none yet. Finishes (after the
    fragments already received) when the generation changes or the stream ends: a
    progressive MP4 cannot carry a second init, so the client must reconnect. A viewer
    lagging more than ``follow_max_lag`` seconds jumps to the latest keyframe fragment.
    """

    def __init__(self, publisher: Publisher) -> None:
        self._pub = publisher
        self._cursor = publisher.cursor()

    @property
    def skips(self) -> int:
        return self._cursor.skips

    def __aiter__(self) -> Follower:
        return self

    async def __aenter__(self) -> Follower:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._cursor.close()

    async def aclose(self) -> None:
        self._cursor.close()

    async def __anext__(self) -> bytes:
        cursor = self._cursor
        if cursor.closed:
            raise StopAsyncIteration
        try:
            await trio.lowlevel.checkpoint()
            while (chunk := cursor.step()) is None:
                if cursor.closed:
                    raise StopAsyncIteration
                await self._pub._change.wait()
            return chunk
        except BaseException:
            cursor.close()
            raise
