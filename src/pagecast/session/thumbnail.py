"""A session's thumbnail: its newest picture, small, for status pages and Home Assistant's
picture cards. Made from the frame already captured (no Chromium work) by a short FFmpeg,
at most once a second per session however often it is asked for."""

from __future__ import annotations

import trio

from ..core.errors import EncodeError
from ..core.ffmpeg import thumbnail_args
from ..core.page import Frame
from ..lowlevel.proc import StopPolicy, open_child

WIDTH = 480
#: A thumbnail younger than this is served again, even if the page changed since.
MAX_AGE = 1.0
TIMEOUT = 5.0


async def scale_jpeg(ffmpeg: str, jpeg: bytes, width: int = WIDTH, timeout: float = TIMEOUT, rotate: int = 0) -> bytes:
    """``jpeg`` scaled to ``width`` pixels wide (height in proportion), as a JPEG, turned
    like the stream (``rotate``)."""
    out = bytearray()
    async with open_child(thumbnail_args(ffmpeg, width, rotate), name="ffmpeg thumbnail", stdin=True, stdout=True, stderr=False,
                          policy=StopPolicy(polite_timeout=0.5, term_timeout=1.0)) as child:
        assert child.stdin is not None and child.stdout is not None

        async def feed() -> None:
            try:
                await child.stdin.send_all(jpeg)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # it exited early: its status says why
            finally:
                await child.stdin.aclose()

        with trio.move_on_after(timeout) as deadline:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(feed)
                while data := await child.stdout.receive_some(65536):
                    out += data
            rc = await child.wait()
    if deadline.cancelled_caught:
        raise EncodeError(f"FFmpeg did not make a thumbnail within {timeout:g} s")
    if rc != 0 or not out.startswith(b"\xff\xd8"):
        raise EncodeError(f"FFmpeg could not make a thumbnail (exit status {rc})")
    return bytes(out)


class Thumbnails:
    """One session's thumbnail, remade from its newest frame when asked for and older than MAX_AGE."""

    def __init__(self, ffmpeg: str, width: int = WIDTH, rotate: int = 0):
        self.ffmpeg = ffmpeg
        self.width = width
        self.rotate = rotate
        self._lock = trio.Lock()
        self._made_at = -float("inf")
        self._frame: float | None = None  # capture time of the frame it was made from (indices restart with each Chromium)
        self._data = b""

    async def of(self, frame: Frame) -> bytes:
        async with self._lock:  # many viewers at once: one FFmpeg
            now = trio.current_time()
            if self._data and (self._frame == frame.captured_at or now - self._made_at < MAX_AGE):
                return self._data
            self._data = await scale_jpeg(self.ffmpeg, frame.jpeg, self.width, rotate=self.rotate)
            self._frame, self._made_at = frame.captured_at, now
            return self._data
