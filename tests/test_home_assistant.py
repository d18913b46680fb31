"""A real Home Assistant (the bench's, pagecast.bench.homeassistant) cast in kiosk view with a
theme. Runs only where that Home Assistant is installed (`pagecast bench --only ha` installs
it once, outside the repository); CI's default run skips it."""

from __future__ import annotations

import subprocess

import pytest
import trio

from helpers import real_home_assistant
from pagecast.bench.homeassistant import open_home_assistant

pytestmark = real_home_assistant()

W, H = 320, 180  # the picture is compared at this size


async def _picture(client, session_id: str) -> bytes:
    """The last frame of the newest segment, as RGB at W×H."""
    base = f"/streams/{session_id}/"
    text = (await client.get(base + "index.m3u8")).text
    init = [line.split('"')[1] for line in text.splitlines() if line.startswith("#EXT-X-MAP")][-1]
    segment = [line for line in text.splitlines() if line and not line.startswith("#")][-1]
    data = (await client.get(base + init)).content + (await client.get(base + segment)).content
    run = await trio.to_thread.run_sync(lambda: subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-vf", f"scale={W}:{H}", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        input=data, capture_output=True, timeout=30,
    ))
    frames = run.stdout
    return frames[len(frames) - W * H * 3:]


def _mean(rgb: bytes, x0: int, y0: int, x1: int, y1: int) -> tuple[float, float, float]:
    sums, n = [0, 0, 0], 0
    for y in range(y0, y1):
        row = rgb[(y * W + x0) * 3:(y * W + x1) * 3]
        for c in range(3):
            sums[c] += sum(row[c::3])
        n += x1 - x0
    return tuple(s / n for s in sums)


def _luma(rgb: tuple[float, float, float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


async def _shown(client, ha, **look) -> bytes:
    r = await client.post("/start?wait=1", json={"url": ha.dashboard_url, "quality": "720p", "auth": {"ha_token": ha.token}, **look})
    assert r.status_code == 202 and r.json()["state"] == "live", r.text
    sid = r.json()["id"]
    await trio.sleep(4)  # the dashboard fills in (history, camera picture) and a segment or two is out
    picture = await _picture(client, sid)
    await client.post("/stop", json={"id": sid})
    return picture


async def test_a_dashboard_in_kiosk_view_with_the_dark_theme_has_no_sidebar_or_top_bar_and_is_dark(client, tmp_path):
    async with open_home_assistant(tmp_path, lambda text: None) as ha:
        plain = await _shown(client, ha)
        kiosk = await _shown(client, ha, kiosk=True, theme="dark")
    # HA's top bar (right of the barcode at the top-left): its blue in the default look, gone in kiosk view.
    top_plain, top_kiosk = _mean(plain, 200, 2, 300, 8), _mean(kiosk, 200, 2, 300, 8)
    assert top_plain[2] > 200 and top_plain[0] < 100, f"the default look should have HA's blue top bar, got {top_plain}"
    assert _luma(top_kiosk) < 60, f"kiosk view with the dark theme should have no top bar, got {top_kiosk}"
    # The sidebar (left edge, below the top bar): light in the default look; the dark view's background in kiosk view.
    side_plain, side_kiosk = _mean(plain, 2, 60, 20, 120), _mean(kiosk, 2, 60, 20, 120)
    assert _luma(side_plain) > 200, f"the default look should show the light sidebar, got {side_plain}"
    assert _luma(side_kiosk) < 60, f"kiosk view should have no sidebar, got {side_kiosk}"
    assert _luma(_mean(kiosk, 0, 20, W, H)) < _luma(_mean(plain, 0, 20, W, H)) - 80, "the dark theme should darken the whole view"
