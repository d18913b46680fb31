"""``GET /metrics``: Prometheus metrics, named after its conventions (prefix ``pagecast_``,
seconds and bytes, ``_total`` on counters, ``_info`` for build information).

No label carries a session id: a service that runs for days starts sessions without end, and
every id would be a new series. Sessions are summed instead, and what differs between them
that an operator alerts on (their state, which child restarted and why, why a TV stopped one)
is a label with a few known values. Per session, ``GET /status`` has it all. Screens (a
session's TVs) are labelled by the TV's name: a house has a few TVs, and which one stalls or
went dark is what an operator wants to know.

A scrape takes a snapshot of the sessions in Trio's thread (they change there), then reads
the processes (psutil) and writes the text in a worker thread, so /metrics never blocks the
streams. Counters over sessions include the ones the service no longer keeps
(``Supervisor.retired``), so they never go back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import psutil
import trio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily

from ..core.lifecycle import State
from ..core.tally import PLAYING_BUCKETS, STARTUP_BUCKETS, Tally, cumulative
from ..lowlevel.proc import process_memory

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACTIVE_STATES = (State.STARTING, State.LIVE, State.STOPPING)


@dataclass
class _Snapshot:
    tally: Tally
    started: int
    states: dict[str, int]
    viewers: int
    casting: int
    edge_age: float | None  # the oldest live edge among live sessions (seconds)
    children: dict[str, list[int]]  # kind → root pids of the sessions' processes
    encoders: dict[str, int] = field(default_factory=dict)  # backend → sessions using it
    encoder: dict[str, Any] = field(default_factory=dict)  # the service's choice (EncoderChoice.health)
    screens: int = 0  # screens on, over the active sessions
    playing: set[str] = field(default_factory=set)  # the TVs (by name) whose screen plays now


class Metrics:
    def __init__(self, supervisor: Any, version: str):
        self.supervisor = supervisor
        self.version = version
        self.registry = CollectorRegistry()
        self.registry.register(self)
        ProcessCollector(registry=self.registry)  # the service's own process_* metrics
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None
        self._cpu_seen: dict[tuple[int, float], tuple[str, float]] = {}  # process → (kind, CPU seconds)
        self._cpu_gone: dict[str, float] = {"chromium": 0.0, "ffmpeg": 0.0}

    def snapshot(self) -> _Snapshot:
        """The sessions as they are now (call in Trio's thread)."""
        sessions = list(self.supervisor.sessions.values())
        states = {str(s): 0 for s in ACTIVE_STATES}
        children: dict[str, list[int]] = {"chromium": [], "ffmpeg": []}
        viewers = casting = 0
        edge_ages: list[float] = []
        encoders: dict[str, int] = {}
        screens = 0
        playing: set[str] = set()
        for s in sessions:
            if s.state in ACTIVE_STATES:
                for screen in s.active_screens():
                    screens += 1
                    w = screen.watcher
                    if w.state == "playing" and w.status().get("player_state") != "BUFFERING":
                        playing.add(screen.device.name)
                states[str(s.state)] += 1
                pub = s.publisher.stats
                viewers += pub.get("viewers", 0)
                if s.state is State.LIVE and pub.get("edge_age_seconds") is not None:
                    edge_ages.append(pub["edge_age_seconds"])
                casting += bool(s.active_screens())
                pids = s.child_pids()
                for kind in children:
                    if pids.get(kind):
                        children[kind].append(pids[kind])
                backend = s.encoding.backend
                if backend:
                    encoders[backend] = encoders.get(backend, 0) + 1
        tally = self.supervisor.retired.plus([s.figures() for s in sessions])
        return _Snapshot(tally, self.supervisor.started, states, viewers, casting, max(edge_ages, default=None), children, encoders,
                         self.supervisor.encoders.health(), screens, playing)

    async def render(self) -> bytes:
        snap = self.snapshot()
        return await trio.to_thread.run_sync(self._generate, snap, abandon_on_cancel=True)

    def _generate(self, snap: _Snapshot) -> bytes:
        with self._lock:
            self._snap = snap
            return generate_latest(self.registry)

    def _children_cpu_memory(self, roots: dict[str, list[int]]) -> tuple[dict[str, float], dict[str, int]]:
        """CPU seconds (since the service began, processes gone included) and memory (PSS, as
        ``/status``'s ``memory_mb``: shared pages split among their users) of the sessions'
        Chromium and FFmpeg processes, by kind."""
        now: dict[tuple[int, float], tuple[str, float]] = {}
        memory = {kind: 0 for kind in roots}
        for kind, pids in roots.items():
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for p in procs:
                    try:
                        with p.oneshot():
                            t = p.cpu_times()
                            now[(p.pid, p.create_time())] = (kind, t.user + t.system)
                            memory[kind] += process_memory(p)
                    except psutil.Error:
                        pass
        for key, (kind, cpu) in self._cpu_seen.items():
            if key not in now:
                self._cpu_gone[kind] = self._cpu_gone.get(kind, 0.0) + cpu
        self._cpu_seen = now
        cpu = dict(self._cpu_gone)
        for kind, seconds in now.values():
            cpu[kind] = cpu.get(kind, 0.0) + seconds
        return cpu, memory

    @staticmethod
    def _screens(snap: _Snapshot):
        """Per TV, every TV that had a screen since the service began: a TV whose screen left
        keeps its series (playing 0), so an alert on it sees the TV go dark."""
        t = snap.tally
        g = GaugeMetricFamily("pagecast_screens", "Screens on now (TVs showing an active session)")
        g.add_metric([], snap.screens)
        yield g
        g = GaugeMetricFamily("pagecast_screen_playing", "1 while a screen on the TV plays its session's stream", labels=["device"])
        for device in t.devices:
            g.add_metric([device], 1 if device in snap.playing else 0)
        yield g
        for name, counts, doc in (
            ("pagecast_screen_stalls", t.screen_stalls, "Times the TV's player went from playing to buffering the stream"),
            ("pagecast_screen_reconnects", t.screen_reconnects, "Connections to the TV lost and made again while it had a screen"),
            ("pagecast_screen_casts", t.screen_casts, "Streams loaded on the TV: a screen's first cast and its re-casts"),
        ):
            c = CounterMetricFamily(name, doc, labels=["device"])
            for device in t.devices:
                c.add_metric([device], counts.get(device, 0))
            yield c

    def collect(self):
        snap = self._snap
        if snap is None:
            return
        t = snap.tally
        info = InfoMetricFamily("pagecast_build", "pagecast's version")
        info.add_metric([], {"version": self.version})
        yield info

        g = GaugeMetricFamily("pagecast_sessions", "Sessions by state (ended ones are not counted here)", labels=["state"])
        for state, n in snap.states.items():
            g.add_metric([state], n)
        yield g
        c = CounterMetricFamily("pagecast_sessions_started", "Sessions started since the service began")
        c.add_metric([], snap.started)
        yield c
        c = CounterMetricFamily("pagecast_sessions_ended", "Sessions ended, by outcome", labels=["outcome"])
        for outcome in ("stopped", "failed"):
            c.add_metric([outcome], t.outcomes.get(outcome, 0))
        yield c

        h = HistogramMetricFamily("pagecast_session_startup_seconds", "POST /start → the stream is live")
        h.add_metric([], cumulative(t.startup, STARTUP_BUCKETS), t.startup_sum)
        yield h
        h = HistogramMetricFamily("pagecast_cast_start_seconds", "POST /start → the TV plays the stream")
        h.add_metric([], cumulative(t.playing, PLAYING_BUCKETS), t.playing_sum)
        yield h

        for name, key, doc in (
            ("pagecast_frames_captured", "captured", "Frames captured from pages (only changed ones)"),
            ("pagecast_frames_encoded", "encoded", "Frames given to the encoder (captured ones and repeats)"),
            ("pagecast_frames_repeated", "repeated", "Repeats of the last frame (segment boundaries, flushes)"),
            ("pagecast_frames_dropped", "dropped", "Captured frames replaced by a newer one before the encoder took them"),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], t.frames.get(key, 0))
            yield c

        c = CounterMetricFamily("pagecast_restarts", "Chromium or FFmpeg replaced inside its session, by child and kind", labels=["child", "kind"])
        for (child, kind), n in sorted(t.restarts.items()):
            c.add_metric([child, kind], n)
        yield c

        g = GaugeMetricFamily("pagecast_live_edge_age_seconds", "Age of the newest segment of the live session whose newest is oldest"
                              " (about one segment duration when all is well; growing: an encoder froze)")
        if snap.edge_age is not None:
            g.add_metric([], snap.edge_age)
        yield g
        g = GaugeMetricFamily("pagecast_viewers", "Players reading the streams now")
        g.add_metric([], snap.viewers)
        yield g
        g = GaugeMetricFamily("pagecast_cast_sessions", "Active sessions cast to a TV")
        g.add_metric([], snap.casting)
        yield g
        c = CounterMetricFamily("pagecast_cast_reconnects", "Connections to TVs lost and made again")
        c.add_metric([], t.cast_reconnects)
        yield c
        c = CounterMetricFamily("pagecast_device_stops", "Screens a TV ended (a session ends with its last), by kind of reason", labels=["reason"])
        for reason in ("stopped", "standby", "other_app", "finished", "other"):
            c.add_metric([reason], t.device_stops.get(reason, 0))
        yield c
        yield from self._screens(snap)

        cpu, memory = self._children_cpu_memory(snap.children)
        c = CounterMetricFamily("pagecast_children_cpu_seconds", "CPU time of the sessions' Chromium and FFmpeg processes", labels=["kind"])
        for kind, seconds in sorted(cpu.items()):
            c.add_metric([kind], round(seconds, 3))
        yield c
        g = GaugeMetricFamily("pagecast_children_memory_bytes", "Memory (proportional set size) of the active sessions' Chromium and FFmpeg processes", labels=["kind"])
        for kind, size in sorted(memory.items()):
            g.add_metric([kind], size)
        yield g

        info = InfoMetricFamily("pagecast_encoder", "The H.264 encoder new sessions use (PAGECAST_ENCODER and its startup probe)")
        info.add_metric([], {"setting": str(snap.encoder.get("setting") or ""), "backend": str(snap.encoder.get("chosen") or "probing")})
        yield info
        c = CounterMetricFamily("pagecast_encoder_fallbacks", "Sessions whose hardware encoder failed and was replaced by libx264")
        c.add_metric([], snap.encoder.get("session_fallbacks") or 0)
        yield c
        g = GaugeMetricFamily("pagecast_encoder_sessions", "Active sessions by encoder backend", labels=["backend"])
        for backend, n in sorted(snap.encoders.items()):
            g.add_metric([backend], n)
        yield g
