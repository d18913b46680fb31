"""What ``/status`` shows of a session, made from what the session knows: pure functions, with
the clocks' readings passed in, so every figure's rule is tested by a table
(tests/test_views.py) and the actor only gathers the facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .answers import (
    CastChild, ChildrenAnswer, EncoderAnswer, EncoderChild, FramesAnswer, RendererChild, ScreenAnswer, SessionAnswer,
)
from .policy import MB
from .supervision import encoder_state
from .timestamps import iso_ms, iso_ms_or_none


@dataclass(frozen=True)
class ChromiumFacts:
    """The Chromium whose frames go to the encoder: ``launched`` and ``last_frame_at`` on the
    session's clock, ``launched_wall`` on the wall clock, ``memory`` in bytes as last measured."""

    pid: int | None
    launched: float | None
    launched_wall: float | None
    last_frame_at: float | None
    memory: int | None


def renderer_child(
    *, ended: bool, state: str, chromium: ChromiumFacts | None, now: float,
    restarts: int, recycles: int, recycle_failures: int, last_recycle: dict[str, Any] | None,
) -> RendererChild:
    running = chromium is not None and chromium.pid is not None
    return RendererChild(
        state="stopped" if ended else state,
        pid=chromium.pid if running else None,
        started=iso_ms_or_none(chromium.launched_wall) if running else None,
        age_s=round(now - chromium.launched, 1) if running and chromium.launched is not None else None,
        memory_mb=round(chromium.memory / MB, 1) if running and chromium.memory is not None else None,
        restarts=restarts, recycles=recycles, recycle_failures=recycle_failures, last_recycle=last_recycle,
        # Frames are captured only when the page changes: a still page has an old one.
        last_frame_s=round(now - chromium.last_frame_at, 2) if chromium is not None and chromium.last_frame_at is not None else None,
    )


def encoder_child(*, ended: bool, state: str, pid: int | None, backend: str | None, restarts: int, output_at: float | None, now: float) -> EncoderChild:
    return EncoderChild(
        state=encoder_state(ended=ended, state=state, running=pid is not None),
        pid=pid, backend=backend, restarts=restarts,
        last_output_s=round(now - output_at, 2) if output_at is not None else None,
    )


def encoder_answer(backend: str | None, fallback: dict[str, Any] | None) -> EncoderAnswer:
    fallback = fallback or {}
    return EncoderAnswer(backend=backend, fell_back_from=fallback.get("from"), reason=fallback.get("reason"), fallbacks=1 if fallback else 0)


def screen_answer(watcher: dict[str, Any], *, since: float, duration: float | None, ended: str | None, ended_at: float | None, error: str | None) -> ScreenAnswer:
    """One TV: its watcher's own figures, and the screen's life in the session."""
    return ScreenAnswer(
        **watcher, since=iso_ms(since), duration=duration, ended=ended, ended_at=iso_ms_or_none(ended_at), error=error,
    )


def session_answer(
    *, id: str, state: str, request: dict[str, Any], started_at: float, live_at: float | None, ended_at: float | None,
    startup_seconds: float | None, stop_reason: str | None, error: str | None, frames: FramesAnswer,
    restarts: dict[str, int], last_restart: dict[str, Any] | None, restart_log: list[dict[str, Any]],
    renderer: RendererChild, encoder: EncoderChild, encoder_info: EncoderAnswer, pipeline_latency_ms: dict[str, Any] | None,
    publisher: dict[str, Any], screens: list[ScreenAnswer], shown: ScreenAnswer | None, stream_url: str, watch_url: str,
) -> SessionAnswer:
    """The session as ``/status`` shows it. ``shown``: the screen ``cast`` describes."""
    return SessionAnswer(
        id=id, state=state, **request,
        started_at=iso_ms(started_at), live_at=iso_ms_or_none(live_at), ended_at=iso_ms_or_none(ended_at),
        startup_seconds=startup_seconds, stop_reason=stop_reason, error=error, frames=frames,
        encoder_restarts=restarts.get("encoder", 0), restarts=dict(restarts), last_restart=last_restart, restart_log=restart_log,
        children=ChildrenAnswer(renderer=renderer, encoder=encoder, cast=CastChild(shown.state, shown.reconnects) if shown is not None else None),
        encoder=encoder_info, pipeline_latency_ms=pipeline_latency_ms,
        segments=publisher.get("segments_produced", 0), viewers=publisher.get("viewers", 0), publisher=publisher,
        cast=shown, screens=screens, stream_url=stream_url, watch_url=watch_url,
    )
