"""A session's FFmpegs: one at a time, feeding the session's publisher. One that dies or hangs
is restarted within the encoder's budget; a hardware encoder that dies is replaced by libx264
at once, outside it (``core.supervision`` decides). The publisher goes on with the same
stream, so a TV needs no re-cast."""

from __future__ import annotations

import logging

import trio

from ..core.errors import EncodeError
from ..core.ffmpeg import EncoderStats, EncodeSpec
from ..core.policy import RestartBudget
from ..core.settings import Settings
from ..core.supervision import Fallback, GiveUp, Restart, after_encode_failure, resume_at
from .encoder_probe import EncoderChoice
from .history import History

log = logging.getLogger("pagecast.session.actor")


class Encoding:
    """``state``: starting, running, restarting; ``backend`` known once the startup probe is
    done; ``fallback``: a hardware encoder replaced by software, and why."""

    def __init__(self, session_id: str, settings: Settings, parts, encoders: EncoderChoice, publisher, history: History, mode: str):
        self.session_id = session_id
        self.settings = settings
        self.parts = parts
        self.encoders = encoders
        self.publisher = publisher
        self.history = history
        self.mode = mode
        self.stats = EncoderStats()
        self.state = "starting"
        self.backend: str | None = None
        self.fallback: dict[str, str] | None = None

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
                    match after_encode_failure(why, backend=backend, budget=budget, failures=failures, now=trio.current_time()):
                        case Fallback(software, note):
                            log.warning("session %s: the %s encoder failed; continuing with %s in the same stream: %s", self.session_id, backend, software, why)
                            self.fallback = {"from": backend, "reason": why}
                            self.encoders.record_fallback(self.session_id, backend, why)
                            self.history.note("encoder", "fallback", note)
                            backend = self.backend = software
                        case Restart(wait, history):
                            self.state = "restarting"
                            self.history.restarted("encoder", str(exc), exc.kind)
                            failures = history
                            await trio.sleep(wait)
                        case GiveUp(message):
                            raise EncodeError(message, kind=exc.kind) from None


def last_words(message: str, keep: int = 600) -> str:
    """An EncodeError's first line and FFmpeg's last lines, within ``keep`` characters."""
    if len(message) <= keep:
        return message
    head = message.split(":", 1)[0]
    return f"{head}: … {message[-(keep - len(head) - 4):]}"
