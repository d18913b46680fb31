"""What the metrics count, as pure data: one session's figures, and the running tally of the
sessions the service has already forgotten (it keeps only the last 50 ended ones), so that
``/metrics`` counters never go backwards. Times are given in; nothing here measures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Histogram buckets (seconds), with one at each target: /start → live ≤ 1.5 s (fmp4) and
#: ≤ 3 s (hls); /start → playing on the TV "within a few seconds".
STARTUP_BUCKETS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
PLAYING_BUCKETS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)


def device_stop_kind(reason: str | None) -> str | None:
    """A TV's reason for ending a session, as one of a few label values (the reason itself is
    free text that may name an app, so it would make labels without bound)."""
    if not reason:
        return None
    r = reason.lower()
    for kind, words in (("standby", ("standby", "switched off", "turned off")), ("other_app", ("app",)),
                        ("stopped", ("stop",)), ("finished", ("idle", "finished", "ended"))):
        if any(w in r for w in words):
            return kind
    return "other"


@dataclass(frozen=True)
class ScreenFigures:
    """One screen's counts (a TV of a session), by the TV's name: a house has a few TVs, so
    the name is a label of bounded values, unlike the session it belongs to."""

    device: str
    stalls: int = 0
    reconnects: int = 0
    casts: int = 0
    device_stop: str | None = None  # a device_stop_kind: the TV ended this screen

    @classmethod
    def of(cls, watcher: Mapping[str, Any]) -> ScreenFigures:
        """From a Cast watcher's status (``/status``'s ``screens``)."""
        return cls(str(watcher.get("device") or ""), int(watcher.get("stalls") or 0), int(watcher.get("reconnects") or 0),
                   int(watcher.get("casts") or 0), device_stop_kind(watcher.get("stopped_by_device")))


@dataclass(frozen=True)
class SessionFigures:
    """One session's counts. ``outcome``: None while it runs, else "stopped" or "failed"."""

    frames_captured: int = 0
    frames_encoded: int = 0
    frames_repeated: int = 0
    frames_dropped: int = 0
    restarts: tuple[tuple[str, str, int], ...] = ()  # (child, kind, count)
    startup_seconds: float | None = None
    playing_seconds: float | None = None
    cast_reconnects: int = 0
    device_stop: str | None = None  # a device_stop_kind: the last a TV ended
    outcome: str | None = None
    screens: tuple[ScreenFigures, ...] = ()  # every screen it had, ended ones too


@dataclass
class Tally:
    """Sums over sessions; ``add`` each session once (when the service forgets it)."""

    sessions: int = 0
    outcomes: Counter = field(default_factory=Counter)
    frames: Counter = field(default_factory=Counter)
    restarts: Counter = field(default_factory=Counter)  # (child, kind) → count
    startup: list[int] = field(default_factory=lambda: [0] * (len(STARTUP_BUCKETS) + 1))  # per bucket, +Inf last
    startup_sum: float = 0.0
    playing: list[int] = field(default_factory=lambda: [0] * (len(PLAYING_BUCKETS) + 1))
    playing_sum: float = 0.0
    cast_reconnects: int = 0
    device_stops: Counter = field(default_factory=Counter)
    # By TV name; every TV that had a screen has a key, so its series starts at 0.
    screen_stalls: Counter = field(default_factory=Counter)
    screen_reconnects: Counter = field(default_factory=Counter)
    screen_casts: Counter = field(default_factory=Counter)

    def add(self, f: SessionFigures) -> None:
        self.sessions += 1
        if f.outcome:
            self.outcomes[f.outcome] += 1
        self.frames.update({"captured": f.frames_captured, "encoded": f.frames_encoded, "repeated": f.frames_repeated, "dropped": f.frames_dropped})
        for child, kind, count in f.restarts:
            self.restarts[(child, kind)] += count
        if f.startup_seconds is not None:
            self.startup[_bucket(f.startup_seconds, STARTUP_BUCKETS)] += 1
            self.startup_sum += f.startup_seconds
        if f.playing_seconds is not None:
            self.playing[_bucket(f.playing_seconds, PLAYING_BUCKETS)] += 1
            self.playing_sum += f.playing_seconds
        self.cast_reconnects += f.cast_reconnects
        # Each screen a TV ended counts (one session may lose several TVs); a session known
        # without its screens counts its own.
        stops = [screen.device_stop for screen in f.screens if screen.device_stop] if f.screens else [f.device_stop]
        self.device_stops.update(kind for kind in stops if kind)
        for screen in f.screens:
            self.screen_stalls[screen.device] += screen.stalls
            self.screen_reconnects[screen.device] += screen.reconnects
            self.screen_casts[screen.device] += screen.casts

    @property
    def devices(self) -> list[str]:
        """The TVs that had a screen, by name."""
        return sorted(self.screen_casts)

    def plus(self, figures: list[SessionFigures]) -> Tally:
        """A copy with ``figures`` added (the sessions still kept), for one scrape."""
        total = Tally(self.sessions, Counter(self.outcomes), Counter(self.frames), Counter(self.restarts), list(self.startup),
                      self.startup_sum, list(self.playing), self.playing_sum, self.cast_reconnects, Counter(self.device_stops),
                      Counter(self.screen_stalls), Counter(self.screen_reconnects), Counter(self.screen_casts))
        for f in figures:
            total.add(f)
        return total


def _bucket(value: float, bounds: tuple[float, ...]) -> int:
    return next((i for i, b in enumerate(bounds) if value <= b), len(bounds))


def cumulative(counts: list[int], bounds: tuple[float, ...]) -> list[tuple[str, int]]:
    """Prometheus histogram buckets (``le`` → count at or below) from per-bucket counts."""
    out, running = [], 0
    for bound, count in zip([*map(str, bounds), "+Inf"], counts):
        running += count
        out.append((bound, running))
    return out
