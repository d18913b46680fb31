"""Watching a casting session while faults happen to it: the TV's player (does its picture
move, did it stall) sampled ten times a second, pagecast's own view (how old its newest
picture of the page is, segments, restarts) four times a second. The samples go into
:mod:`.gaps`. The FFmpeg player reports progress twice a second, so its freezes are seen to
within half a second; Shaka's, ten times a second."""

from __future__ import annotations

import time
from typing import Any

import trio

from ..bench.drive import Pagecast
from .gaps import Gaps, Stalls

TV_EVERY = 0.1
STATUS_EVERY = 0.25


class Watch:
    def __init__(self, pc: Pagecast, tv: Any, session_id: str):
        self.pc = pc
        self.tv = tv
        self.id = session_id
        self.tv_gaps = Gaps(threshold=0.5)  # the TV's decoded frames
        self.picture_gaps = Gaps(threshold=0.5)  # the page's newest frame, as old as pagecast says
        self.stalls = Stalls()
        self.status: dict[str, Any] = {}
        self.errors: list[str] = []

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_tv)
            await nursery.start(self._watch_status)
            task_status.started()

    async def _watch_tv(self) -> None:
        while True:
            st = self.tv.state()
            now = time.monotonic()
            if st.get("app_id") and not st.get("idle_screen") and st.get("media_status"):
                self.tv_gaps.observe(now, (st.get("loads"), st["stats"].get("frames")))
                self.stalls.observe(now, int(st["stats"].get("stalls") or 0))
            await trio.sleep(TV_EVERY)

    async def _watch_status(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                r = await self.pc.client.get(f"/sessions/{self.id}", timeout=10)
                self.status = r.json()
                renderer = (self.status.get("children") or {}).get("renderer") or {}
                self.picture_gaps.observe_age(time.monotonic(), renderer.get("last_frame_s"))
            except Exception as exc:  # noqa: BLE001 - a slow answer is a figure, not the end of the watch
                self.errors.append(f"{type(exc).__name__}: {exc}")
            if not started:
                task_status.started()
                started = True
            await trio.sleep(STATUS_EVERY)

    async def fresh(self) -> dict[str, Any]:
        r = await self.pc.client.get(f"/sessions/{self.id}", timeout=10)
        self.status = r.json()
        return self.status

    def close(self) -> None:
        now = time.monotonic()
        self.tv_gaps.close(now)
        self.picture_gaps.close(now)

    def freeze(self, *, within=None, outside=()) -> float:
        return max(self.tv_gaps.longest(within=within, outside=outside), self.picture_gaps.longest(within=within, outside=outside))
