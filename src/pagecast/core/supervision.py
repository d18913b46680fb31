"""What a session does after one of its children fails, and how it ended: pure functions of
what happened and when (times are arguments), carried out by the session actor.

The renderer (Chromium) and the encoder (FFmpeg) fail in the same few ways, and each answer is
one of four: try a fresh one at once (``Retry``), go on with the software encoder (``Fallback``),
restart within the child's budget after a wait (``Restart``), or fail the session
(``GiveUp``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .encoders import LIBX264
from .errors import DeviceEnded, Refused, SessionFailure
from .policy import RestartBudget


@dataclass(frozen=True)
class Retry:
    """A fresh child at once, outside the budget."""

    note: str


@dataclass(frozen=True)
class Fallback:
    """The hardware encoder failed: libx264 goes on in the same stream, outside the budget."""

    backend: str
    note: str


@dataclass(frozen=True)
class Restart:
    """Restart after ``wait`` seconds; ``history`` is the failure times to keep."""

    wait: float
    history: tuple[float, ...]


@dataclass(frozen=True)
class GiveUp:
    """Fail the session with ``message``."""

    message: str


Decision = Retry | Fallback | Restart | GiveUp


def after_render_failure(
    error: str, kind: str, *, shown: bool, retried: bool, budget: RestartBudget, failures: Sequence[float], now: float,
) -> Decision:
    """A Chromium failed. Before the page was first shown, its failure is the session's (a wrong
    URL, missing credentials), except a Chromium whose read-backs all came back empty
    (``no_picture``) or that stopped answering while loading (``hang``), both seen rarely on a
    busy machine: one more Chromium is worth a try. Once shown, a crash or hang is restarted
    within the renderer's budget. A login page (credentials refused or expired) is never
    restarted: a new Chromium would land there again."""
    if kind == "login":
        return GiveUp(error)
    if not shown:
        if kind in ("no_picture", "hang") and not retried:
            return Retry(f"{error}; trying a new Chromium once")
        return GiveUp(error)
    return _budget("renderer", error, budget, failures, now)


def after_encode_failure(error: str, *, backend: str, budget: RestartBudget, failures: Sequence[float], now: float) -> Decision:
    """An FFmpeg failed. A hardware encoder is replaced by libx264 at once; libx264 itself is
    restarted within the encoder's budget."""
    if backend != LIBX264:
        return Fallback(LIBX264, f"{backend} replaced by libx264: {error}")
    return _budget("encoder", error, budget, failures, now)


def _budget(child: str, error: str, budget: RestartBudget, failures: Sequence[float], now: float) -> Decision:
    verdict = budget.decide(failures, now)
    if not verdict.restart:
        return GiveUp(f"the {child} failed {verdict.failures} times in {budget.window:g} s; last: {error}")
    return Restart(verdict.wait, verdict.history)


def resume_at(mode: str, started_at: float, generation_end: float | None) -> float | None:
    """Where a restarted encoder's timestamps go on: in a playlist, where the last one's video
    ended (no hole for players to jump); a progressive stream goes on from now (None)."""
    if mode != "hls" or generation_end is None:
        return None
    return started_at + generation_end


def encoder_state(*, ended: bool, state: str, running: bool) -> str:
    """The encoder as ``/status`` shows it: ``stopped`` once the session ended, ``restarting``
    between two FFmpegs, ``running`` while one runs, ``starting`` before the first."""
    if ended:
        return "stopped"
    if state == "restarting" or running:
        return state
    return "starting"


@dataclass(frozen=True)
class Ending:
    """How a session's run ended: ``failed`` (with ``message``), ``stopped`` (``reason``, or
    None to keep the reason given when it was stopped), ``refused`` (the /start's answer: the
    error is raised again), and whether what ended it must be raised again (cancellation)."""

    outcome: str
    message: str | None = None
    reraise: bool = False
    bug: BaseException | None = None  # to log with its traceback


def ending(leaves: Sequence[BaseException]) -> Ending:
    """Read the errors a session's nursery raised (flattened) as its ending. A refusal before
    it started is the /start's answer; a failure of a part fails it; the TV ending it stops
    it; a bug fails this session, not the service. Cancellation and other BaseExceptions are
    raised again."""
    reraise = any(not isinstance(e, Exception) for e in leaves)
    refused = next((e for e in leaves if isinstance(e, Refused)), None)
    if refused is not None:
        return Ending("refused", str(refused), True)
    failure = next((e for e in leaves if isinstance(e, SessionFailure)), None)
    if failure is not None:
        return Ending("failed", str(failure), reraise)
    ended = next((e for e in leaves if isinstance(e, DeviceEnded)), None)
    if ended is not None:
        return Ending("stopped", ended.reason, reraise)
    bug = next((e for e in leaves if isinstance(e, Exception)), None)
    if bug is not None:
        return Ending("failed", f"internal error: {bug!r}", reraise, bug)
    return Ending("stopped", None, reraise)
