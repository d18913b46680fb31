"""A session's Chromiums: one after another for as long as the session runs. A crash or hang
gets a new Chromium within the renderer's budget (``core.supervision`` decides); one that grew
old or big is replaced make-before-break (``core.policy.Recycling``), the old one streaming
until the new one has its first picture."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import trio

from ..core.errors import RenderError
from ..core.page import Frame, PageSpec
from ..core.policy import MB, Recycling, RestartBudget
from ..core.settings import Settings
from ..core.supervision import Retry, after_render_failure
from ..core.views import ChromiumFacts
from ..lowlevel.groups import one_error
from .handoff import FrameSwitch
from .history import Child

log = logging.getLogger("pagecast.session.actor")


@dataclass(eq=False, kw_only=True)
class Renderers(Child):
    """``state``: starting, running, restarting (after a failure), recycling."""

    stats: dict
    #: the Chromium whose frames go to the encoder
    current: _Chromium | None = None
    #: while it runs: the newest picture in the stream
    switch: FrameSwitch | None = None

    def picture(self) -> Frame | None:
        return self.switch.last_frame if self.switch is not None else None

    def facts(self) -> ChromiumFacts | None:
        chromium = self.current
        if chromium is None:
            return None
        b = chromium.browser
        return ChromiumFacts(b.pid, b.launched, b.launched_wall, b.last_frame_at, chromium.memory)

    def release(self) -> None:
        """The session ended: its Chromium and its last picture go."""
        self.current = self.switch = None

    async def run(self, page: PageSpec, frames_send, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run Chromium. Started once the page was first shown: failures before that are the
        session's (a wrong URL, missing credentials); after, a crash or hang gets a new Chromium
        and the page reloaded, while the encoder repeats the last frame: no gap on the TV."""
        budget = RestartBudget(self.settings.renderer_restarts, self.settings.renderer_restart_window, backoff=0.5)
        failures: tuple[float, ...] = ()
        first = _FirstStart(task_status)
        retried = False
        async with frames_send:
            switch = self.switch = FrameSwitch(frames_send)
            with one_error(RenderError, KeyboardInterrupt):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(switch.run)
                    while True:
                        try:
                            await self._one_after_another(page, switch, first)
                        except RenderError as exc:
                            decision = after_render_failure(
                                str(exc), exc.kind, shown=first.done, retried=retried, budget=budget, failures=failures, now=trio.current_time(),
                            )
                            if isinstance(decision, Retry):
                                retried = True
                                log.warning("session %s: %s", self.session_id, decision.note)
                                continue
                            self.state = "restarting"
                            failures = await self.history.carry_out("renderer", exc, decision)

    async def _one_after_another(self, page: PageSpec, switch: FrameSwitch, first: _FirstStart) -> None:
        """Every check interval the Chromium streaming is measured; when it is due, a new one
        loads the page while it keeps streaming, takes over once it has its first frame, and
        the old one stops. A new one that fails to load is given up and tried again later.
        Raises the RenderError of the one streaming when it fails."""
        settings = self.settings
        recycling = Recycling(max_memory=settings.renderer_max_memory_mb * MB, max_age=settings.renderer_max_age)
        failed, failed_at = 0, -math.inf
        with one_error(RenderError, KeyboardInterrupt):
            async with trio.open_nursery() as nursery:
                current = self.current = _Chromium(switch, self.stats, self.parts)
                switch.take_over(current.outlet)  # nothing else draws: its frames go on from the first
                await nursery.start(current.run, page, settings)
                if not first.done:
                    first.started()
                self.state = "running"
                while True:
                    current.memory = await current.browser.memory()
                    now = trio.current_time()
                    reason = recycling.due(current.age(now), current.memory, failures=failed, since_failure=now - failed_at)
                    if reason is None:
                        await trio.sleep(settings.renderer_check_interval)
                        continue
                    self.state = "recycling"
                    new = _Chromium(switch, self.stats, self.parts)
                    began = trio.current_time()
                    try:
                        await nursery.start(new.run, page, settings)
                    except RenderError as exc:
                        failed, failed_at = failed + 1, trio.current_time()
                        self.history.recycle_failed(reason, str(exc), retry_in=recycling.retry.delay(failed - 1))
                        continue
                    finally:
                        self.state = "running"
                    switch.take_over(new.outlet)
                    memory = round(current.memory / MB) if current.memory is not None else None
                    self.history.recycled(reason, current.browser.pid, new.browser.pid, memory, trio.current_time() - began)
                    current.retire()
                    current = self.current = new
                    failed = 0


class _Chromium:
    """One Chromium of a session: its renderer's task (``run``, in a cancel scope), its
    ``Browser`` and its outlet to the encoder. Retired (replaced make-before-break), its
    outlet takes nothing more and it is stopped; what it raises while stopping is nobody's."""

    def __init__(self, switch: FrameSwitch, stats: dict, parts):
        self.parts = parts
        self.browser = parts.browser(stats)
        self.outlet = switch.outlet(stats)
        self.memory: int | None = None  # bytes, as last measured
        self._scope = trio.CancelScope()

    async def run(self, page: PageSpec, settings: Settings, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with self._scope:
            try:
                await self.parts.render(page, settings, self.outlet, task_status=task_status, browser=self.browser)
            except RenderError:
                if not self._scope.cancel_called:
                    raise

    def age(self, now: float) -> float:
        return now - self.browser.launched if self.browser.launched is not None else 0.0

    def retire(self) -> None:
        self.outlet.retire()
        self._scope.cancel()


class _FirstStart:
    """The renderer's first ``task_status``: a restarted renderer reports to nobody."""

    def __init__(self, task_status):
        self._task_status = task_status
        self.done = False

    def started(self, value=None) -> None:
        self.done = True
        self._task_status.started(value)
