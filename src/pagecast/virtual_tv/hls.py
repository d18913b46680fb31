"""Where a player joins a live HLS stream: its HOLD-BACK behind the live edge.

A Cast receiver's engine (Shaka, hls.js) starts a live stream ``EXT-X-SERVER-CONTROL:HOLD-BACK``
seconds behind its newest segment (three target durations when the playlist names none,
RFC 8216bis's floor), and waits until the playlist holds that much. FFmpeg's HLS reader instead
starts three segments from the end, or at the first when there are fewer: a player that joins a
young stream then reads at its live edge for good, waits for every new segment, and stalls
whenever one comes a little late.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import trio


@dataclass(frozen=True, slots=True)
class LivePlaylist:
    durations: tuple[float, ...]
    target: float
    hold_back: float

    def segments_back(self) -> int | None:
        """How many segments from the end span ``hold_back``; None while the playlist holds less."""
        total = 0.0
        for n, duration in enumerate(reversed(self.durations), start=1):
            total += duration
            if total >= self.hold_back - 1e-3:
                return n
        return None


def parse_live(text: str) -> LivePlaylist | None:
    """A live media playlist's segment durations and hold back; None for a finished one."""
    if "#EXT-X-ENDLIST" in text:
        return None
    target = float(m.group(1)) if (m := re.search(r"^#EXT-X-TARGETDURATION:([\d.]+)", text, re.M)) else 1.0
    hold = re.search(r"^#EXT-X-SERVER-CONTROL:.*?\bHOLD-BACK=([\d.]+)", text, re.M)
    durations = tuple(float(d) for d in re.findall(r"^#EXTINF:([\d.]+)", text, re.M))
    return LivePlaylist(durations, target, float(hold.group(1)) if hold else 3.0 * target)


def first_variant(text: str, url: str) -> str | None:
    """The URL of a multivariant playlist's first stream; None for a media playlist."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF"):
            uri = next((u for u in lines[i + 1:] if u and not u.startswith("#")), None)
            return urljoin(url, uri) if uri else None
    return None


async def live_join(url: str, *, give_up: float) -> int | None:
    """How many segments from the end to start ``url`` at, once its playlist holds the hold
    back (waiting for a young stream to grow, polled every half target duration); None for a
    stream that is not live HLS or does not answer, which the player then opens as it is."""
    with trio.move_on_after(give_up):
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                try:
                    answer = await client.get(url)
                    answer.raise_for_status()
                except httpx.HTTPError:
                    return None
                text = answer.text
                if (variant := first_variant(text, url)) is not None:
                    url = variant
                    continue
                playlist = parse_live(text)
                if playlist is None:
                    return None
                if (back := playlist.segments_back()) is not None:
                    return back
                await trio.sleep(max(0.1, playlist.target / 2))
    return None
