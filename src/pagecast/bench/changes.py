"""How late each change of a page reaches the stream: record a session's HLS segments, decode
them, read the time barcode the page draws (static/bench-clock.html's format: 48 cells of
24 px at the top-left, black = 1) from every frame, and place each frame on the stream's
timeline by its segment's ``PROGRAM-DATE-TIME``.

On the Home Assistant dashboard the barcode is the time the ticking entity last changed in
Home Assistant, so "first frame showing a value − that value" is change in HA → picture in
the stream: HA's websocket, the frontend's redraw and pagecast's capture (a stream's
PROGRAM-DATE-TIME starts when its first picture was captured, so a frame's date is when the
page looked like that). It is what a viewer's timeline shows, minus the player's own buffer.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import trio

BITS, CELL = 48, 24


@dataclass
class Segment:
    pdt: float  # epoch seconds
    init: bytes = field(repr=False)
    data: bytes = field(repr=False)


def parse_playlist(text: str) -> list[tuple[float, str, str]]:
    """``(pdt, init uri, segment uri)`` for every segment listed."""
    out, init, pdt = [], "", None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            m = re.search(r'URI="([^"]+)"', line)
            init = m.group(1) if m else init
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
        elif line and not line.startswith("#") and pdt is not None:
            out.append((pdt, init, line))
            pdt = None
    return out


async def record(client: Any, session_id: str, seconds: float) -> list[Segment]:
    """The segments the session publishes during the next ``seconds`` (polling its playlist)."""
    base = f"/streams/{session_id}/"
    seen: set[str] = set()
    inits: dict[str, bytes] = {}
    segments: list[Segment] = []
    first = True
    with trio.move_on_after(seconds):
        while True:
            listed = parse_playlist((await client.get(base + "index.m3u8")).text)
            for pdt, init, uri in listed:
                if uri in seen:
                    continue
                seen.add(uri)
                if first:
                    continue  # published before the window began
                if init not in inits:
                    inits[init] = (await client.get(base + init)).content
                r = await client.get(base + uri)
                if r.status_code == 200:
                    segments.append(Segment(pdt, inits[init], r.content))
            first = False
            await trio.sleep(0.4)
    return segments


def read_barcode(row: bytes, cell: int = CELL) -> int:
    value = 0
    for i in range(BITS):
        value = value * 2 + (1 if row[i * cell + cell // 2] < 128 else 0)
    return value


def decode(segment: Segment, width: int, ffmpeg: str = "ffmpeg") -> list[tuple[float, int]]:
    """``(epoch seconds on the stream's timeline, barcode)`` of every frame in ``segment``."""
    scale = width / 1920
    cell = max(1, round(CELL * scale))
    crop_w, crop_h = BITS * cell, cell
    run = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "info", "-f", "mp4", "-i", "pipe:0", "-map", "0:v",
         "-vf", f"crop={crop_w}:{crop_h}:0:0,showinfo", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        input=segment.init + segment.data, capture_output=True, timeout=60,
    )
    times = [float(t) for t in re.findall(rb"pts_time:\s*([-0-9.]+)", run.stderr)]
    size = crop_w * crop_h
    frames = [run.stdout[i * size:(i + 1) * size] for i in range(len(run.stdout) // size)]
    if not times or len(times) != len(frames):
        return []
    start = times[0]
    middle = crop_h // 2
    return [(segment.pdt + t - start, read_barcode(f[middle * crop_w:(middle + 1) * crop_w], cell)) for t, f in zip(times, frames)]


def first_seen(frames: list[tuple[float, int]]) -> dict[int, float]:
    """Each barcode value → when it first appeared on the stream's timeline."""
    seen: dict[int, float] = {}
    for at, value in sorted(frames):
        seen.setdefault(value, at)
    return seen


def change_delays(frames: list[tuple[float, int]], changed_at: list[float]) -> dict[str, Any]:
    """Per change in ``changed_at`` (epoch seconds, from Home Assistant) inside the recorded
    span: how long after it the stream first showed it; changes never shown are ``missed``."""
    if not frames:
        return {"changes": 0, "delays_ms": [], "missed": 0}
    seen = first_seen(frames)
    lo, hi = min(t for t, _ in frames), max(t for t, _ in frames)
    delays, missed = [], 0
    for c in changed_at:
        if not lo + 1.0 <= c <= hi - 1.0:
            continue  # too close to the ends of the recording to judge
        value = int(c * 1000)
        at = seen.get(value, seen.get(value + 1, seen.get(value - 1)))
        if at is None:
            missed += 1
        else:
            delays.append(round((at - c) * 1000, 1))
    return {"changes": len(delays) + missed, "delays_ms": delays, "missed": missed}
