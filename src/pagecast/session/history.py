"""What a session's children went through: restarts after a crash or hang, Chromiums replaced
make-before-break, hardware encoders given up. Counted for /status and /metrics, and logged
once, each with its reason."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import trio

from ..core.errors import SessionFailure
from ..core.supervision import GiveUp, Restart
from ..core.timestamps import iso_ms

log = logging.getLogger("pagecast.session.actor")

#: Restarts, recycles and fallbacks kept for /status's ``restart_log``.
RESTART_LOG = 10


@dataclass(eq=False, kw_only=True)
class Child:
    """What supervising one of a session's children takes: its session, settings and parts,
    and the history it adds to; ``state`` is what /status shows of it."""

    session_id: str
    settings: Any
    parts: Any
    history: History
    state: str = "starting"


class History:
    def __init__(self, session_id: str):
        self.session_id = session_id
        self.restarts = {"renderer": 0, "encoder": 0}
        self.kinds: Counter[tuple[str, str]] = Counter()  # (child, kind): for /metrics
        self.last_restart: dict[str, Any] | None = None
        self.recycles = 0  # Chromiums replaced make-before-break (age, memory): not restarts
        self.recycle_failures = 0
        self.last_recycle: dict[str, Any] | None = None
        self.log: deque[dict[str, Any]] = deque(maxlen=RESTART_LOG)

    def note(self, child: str, kind: str, reason: str) -> None:
        self.log.append({"child": child, "kind": kind, "reason": reason, "at": iso_ms(time.time())})

    def restarted(self, child: str, reason: str, kind: str = "crash") -> None:
        self.restarts[child] += 1
        self.kinds[(child, kind)] += 1
        self.last_restart = {"child": child, "kind": kind, "reason": reason, "at": iso_ms(time.time())}
        self.note(child, kind, reason)
        log.warning(
            "session %s: %s restarting (%d): %s", self.session_id, child, self.restarts[child], reason,
            extra={"fields": {"event": "restart", "session": self.session_id, "child": child, "kind": kind, "reason": reason, "restarts": self.restarts[child]}},
        )

    async def carry_out(self, child: str, error: SessionFailure, decision: Restart | GiveUp) -> tuple[float, ...]:
        """A child's failure, decided by ``core.supervision``: a restart is recorded and its
        backoff waited (the failure times to keep are returned); giving up fails the session
        with the same kind of error."""
        if isinstance(decision, GiveUp):
            raise type(error)(decision.message, kind=error.kind) from None
        self.restarted(child, str(error), error.kind)
        await trio.sleep(decision.wait)
        return decision.history

    def recycled(self, reason: str, old_pid: int | None, new_pid: int | None, old_memory_mb: int | None, took: float) -> None:
        self.recycles += 1
        self.last_recycle = {"reason": reason, "at": iso_ms(time.time())}
        self.note("renderer", "recycle", reason)
        log.info(
            "session %s: Chromium replaced (%d), make-before-break: %s; pid %s → %s, the new one ready in %.1f s",
            self.session_id, self.recycles, reason, old_pid, new_pid, took,
            extra={"fields": {
                "event": "recycle", "session": self.session_id, "child": "renderer", "reason": reason, "recycles": self.recycles,
                "old_pid": old_pid, "new_pid": new_pid, "old_memory_mb": old_memory_mb, "ready_seconds": round(took, 2),
            }},
        )

    def recycle_failed(self, reason: str, error: str, retry_in: float) -> None:
        self.recycle_failures += 1
        self.note("renderer", "recycle_failed", f"{reason}; the new Chromium failed: {error}")
        log.warning(
            "session %s: could not replace Chromium (%s): the new one failed: %s; the old one streams on, next try in %g s",
            self.session_id, reason, error, retry_in,
            extra={"fields": {
                "event": "recycle_failed", "session": self.session_id, "child": "renderer", "reason": reason, "error": error,
                "recycle_failures": self.recycle_failures, "retry_in": retry_in,
            }},
        )
