"""The faults the harness does to a running session's children, and how it tells that the
session healed: the child's restart is counted in /status and the stream flows again."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import psutil
import trio

from ..bench.drive import Pagecast
from ..lowlevel.proc import alive, descendants, is_renderer
from .rig import child_pid, signal_pids
from .watch import Watch

#: How long a healed child may take before the harness calls it a failure.
RECOVERY_LIMIT = 30.0
#: After a fault's recovery, this long still counts as the fault's (a player catching up).
SETTLE = 8.0


@dataclass(frozen=True)
class Fault:
    name: str
    child: str  # the /status child that must restart: "encoder" or "renderer"
    target: str  # "encoder", "browser" or "renderer"
    sig: signal.Signals


FAULTS = {
    "kill-ffmpeg": Fault("SIGKILL FFmpeg", "encoder", "encoder", signal.SIGKILL),
    "kill-renderer": Fault("SIGKILL Chromium's renderer", "renderer", "renderer", signal.SIGKILL),
    "kill-browser": Fault("SIGKILL Chromium's browser", "renderer", "browser", signal.SIGKILL),
    "stop-ffmpeg": Fault("SIGSTOP FFmpeg", "encoder", "encoder", signal.SIGSTOP),
    "stop-browser": Fault("SIGSTOP Chromium", "renderer", "browser", signal.SIGSTOP),
}


@dataclass
class Outcome:
    fault: Fault
    at: float  # time.monotonic() of the signal
    recovery: float | None = None
    error: str | None = None

    @property
    def window(self) -> tuple[float, float]:
        return (self.at - 0.5, self.at + (self.recovery if self.recovery is not None else RECOVERY_LIMIT) + SETTLE)


def _flowing(status: dict, child: str) -> int:
    return status.get("publisher", {}).get("segments_produced", 0) if child == "encoder" else status.get("frames", {}).get("captured", 0)


async def inject(pc: Pagecast, watch: Watch, fault: Fault) -> Outcome:
    """Do ``fault`` to ``watch``'s session and wait until it healed (or did not)."""
    st = await watch.fresh()
    pid = child_pid(st, "encoder" if fault.target == "encoder" else "renderer", pc.child.pid)
    if pid is None:
        return Outcome(fault, time.monotonic(), error="could not find the process to hit")
    victims = [p.pid for p in descendants(pid, is_renderer)] if fault.target == "renderer" else [pid]
    if not victims:
        return Outcome(fault, time.monotonic(), error="the browser had no renderer process")
    try:
        procs = [psutil.Process(v) for v in victims]
    except psutil.Error:
        procs = []
    before = st.get("restarts", {}).get(fault.child, 0)
    out = Outcome(fault, time.monotonic())
    signal_pids(victims, fault.sig)
    try:
        with trio.fail_after(RECOVERY_LIMIT):
            while True:
                st = await watch.fresh()
                if st.get("state") != "live":
                    out.error = f"the session ended: {st.get('state')} ({st.get('error') or st.get('stop_reason')})"
                    return out
                if st.get("restarts", {}).get(fault.child, 0) > before:
                    break
                await trio.sleep(0.05)
            mark = _flowing(st, fault.child)
            while _flowing(st, fault.child) <= mark:
                await trio.sleep(0.05)
                st = await watch.fresh()
        out.recovery = time.monotonic() - out.at
    except trio.TooSlowError:
        out.error = f"not healed within {RECOVERY_LIMIT:g} s (restarts of the {fault.child}: {st.get('restarts')})"
    finally:
        if fault.sig == signal.SIGSTOP:
            stuck = alive(procs)
            if stuck:
                out.error = out.error or f"the stopped process was left behind: {[p.pid for p in stuck]}"
                signal_pids([p.pid for p in stuck], signal.SIGKILL)
    return out

