"""A session's FFmpegs: one at a time, feeding the session's publisher. One that dies or hangs
is restarted within the encoder's budget; a hardware encoder that dies is replaced by libx264
at once, outside it (``core.supervision`` decides). The publisher goes on with the same
stream, so a TV needs no re-cast."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import trio

from ..core.errors import EncodeError
from ..core.ffmpeg import EncoderStats, EncodeSpec
from ..core.policy import RestartBudget
from ..core.supervision import Fallback, after_encode_failure, resume_at
from .encoder_probe import EncoderChoice
from .history import Child

log = logging.getLogger("pagecast.session.actor")


@dataclass(eq=False, kw_only=True)
class Encoding(Child):
    """``state``: starting, running, restarting."""

    encoders: EncoderChoice
    publisher: Any
    mode: str
    stats: EncoderStats = field(default_factory=EncoderStats)
    #: known once the startup probe is done
    backend: str | None = None
    #: a hardware encoder replaced by software, and why
    fallback: dict[str, str] | None = None

    async def run(self, spec: EncodeSpec, frames_recv) -> None:
        backend = self.backend = await self.encoders.backend()
        budget = RestartBudget(self.settings.encoder_restarts, self.settings.encoder_restart_window, backoff=0.5)
        failures: tuple[float, ...] = ()
        async with frames_recv:
            while True:
                self.publisher.begin_generation()
                self.state = "running"
                try:
                    await self.parts.encode(
                        spec, self.settings.ffmpeg, frames_recv, self.publisher, stats=self.stats, backend=backend,
                        hang_timeout=self.settings.encoder_hang_timeout,
                        resume_at=resume_at(self.mode, self.stats.started_at, self.publisher.generation_end()),
                    )
                except EncodeError as exc:
                    why = last_words(str(exc))
                    decision = after_encode_failure(why, backend=backend, budget=budget, failures=failures, now=trio.current_time())
                    if isinstance(decision, Fallback):
                        log.warning("session %s: the %s encoder failed; continuing with %s in the same stream: %s", self.session_id, backend, decision.backend, why)
                        self.fallback = {"from": backend, "reason": why}
                        self.encoders.record_fallback(self.session_id, backend, why)
                        self.history.note("encoder", "fallback", decision.note)
                        backend = self.backend = decision.backend
                        continue
                    self.state = "restarting"
                    failures = await self.history.carry_out("encoder", exc, decision)


def last_words(message: str, keep: int = 600) -> str:
    """An EncodeError's first line and FFmpeg's last lines, within ``keep`` characters."""
    if len(message) <= keep:
        return message
    head = message.split(":", 1)[0]
    return f"{head}: … {message[-(keep - len(head) - 4):]}"
