"""The scenarios of ``pagecast chaos``: each runs against a fresh ``pagecast serve`` and the
rig's virtual TVs and returns one :class:`~.report.Row`. ``quick`` makes each one small
enough for CI; docs/reliability.md says what each proves."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable

import trio

from ..bench.context import describe
from ..bench.drive import Pagecast, owned
from .faults import FAULTS, SETTLE, Outcome, inject
from .gaps import growth, percentile
from .report import Row
from .rig import Rig, active_sessions, descendants, gone, is_browser, is_ffmpeg, start_cast, usage
from .watch import Watch

#: How many ended sessions ``/status`` keeps (docs/api.md: "the last 50"); the harness reads the
#: service only over HTTP, so it states the figure rather than importing it.
ENDED_HISTORY = 50
#: The service's playlist window (``PAGECAST_PLAYLIST_WINDOW``, 40 s by default). A session's
#: segments stay in memory while listed and, once delisted, as long again (RFC 8216 6.2.2), so
#: its memory grows for about twice the window after it starts, then is flat.
PLAYLIST_WINDOW = 40.0


@dataclass
class Options:
    quick: bool = False
    minutes: float = 3.0  # the soak's length
    busy_seconds: float = 300.0
    seed: int | None = None
    progress: Callable[[str], None] = lambda text: None

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    @property
    def settle(self) -> float:
        """How long after a fault's recovery the TV is given before it must be PLAYING."""
        return 1.0 if self.quick else SETTLE


Scenario = Callable[[Rig, Options], Awaitable[Row]]


# -- shared steps -----------------------------------------------------------------------------


async def _stop(pc: Pagecast, session_id: str | None = None) -> float:
    """/stop, then seconds until every child of pagecast is gone."""
    t0 = time.monotonic()
    await pc.client.post("/stop", json={"id": session_id} if session_id else {})
    with trio.move_on_after(20):
        while await active_sessions(pc):
            await trio.sleep(0.05)
    _, left = await gone(descendants(pc.child.pid), 10)
    if left:
        raise RuntimeError(f"processes left after /stop: {[p.pid for p in left]}")
    return time.monotonic() - t0


def _resources(row: Row, pc: Pagecast, before) -> None:
    after = usage(pc.child.pid)
    if before is not None and after is not None:
        row.fd_delta = after.fds - before.fds
        row.thread_delta = after.threads - before.threads
        row.rss_growth = growth(before.rss, after.rss)


async def _left(pc: Pagecast) -> int:
    _, left = await gone(descendants(pc.child.pid), 5)
    return len(left)


@contextlib.asynccontextmanager
async def _watched(pc: Pagecast, tv: Any, session_id: str):
    watch = Watch(pc, tv, session_id)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        try:
            yield watch
        finally:
            watch.close()
            nursery.cancel_scope.cancel()


# -- 1. start/stop cycles ----------------------------------------------------------------------


async def cycles(rig: Rig, opts: Options) -> Row:
    row = Row("1. start/stop cycles")
    n = 2 if opts.quick else 100
    rounds = 1 if opts.quick else 34
    await rig.reset_tvs()
    async with rig.serve() as pc:
        async with trio.open_nursery() as nursery:  # warm-up: imports, first connections to each TV
            for tv in rig.tvs:
                nursery.start_soon(start_cast, pc, rig.page, tv)
        await _stop(pc)
        if not opts.quick:
            # /status keeps the last ENDED_HISTORY ended sessions; each record holds about 70 KB
            # of RSS (measured: the RSS grows until there are that many, then is flat). That
            # bounded history is the service's steady state, not a leak: measure from it.
            for i in range(ENDED_HISTORY - len(rig.tvs)):
                opts.progress(f"cycles: warm-up, /status's history filling, {i + 1}/{ENDED_HISTORY - len(rig.tvs)}")
                try:
                    session = await start_cast(pc, rig.page, rig.tvs[1])
                    await _stop(pc, session["id"])
                except Exception as exc:  # noqa: BLE001 - not a measured cycle, but not hidden either
                    row.notes.append(f"warm-up cycle {i + 1}: {describe(exc)}")
                    with contextlib.suppress(Exception):
                        await _stop(pc)
        before = usage(pc.child.pid)
        for i in range(n):
            opts.progress(f"cycles: one TV, {i + 1}/{n}")
            row.runs += 1
            try:
                session = await start_cast(pc, rig.page, rig.tvs[1])
                row.recoveries.append(await _stop(pc, session["id"]))
            except Exception as exc:  # noqa: BLE001 - a failed cycle is a figure
                row.fail(f"cycle {i + 1}: {describe(exc)}")
        for i in range(rounds):
            opts.progress(f"cycles: three TVs at once, {i + 1}/{rounds}")
            row.runs += len(rig.tvs)
            try:
                async with trio.open_nursery() as nursery:
                    for tv in rig.tvs:
                        nursery.start_soon(start_cast, pc, rig.page, tv)
                row.recoveries.append(await _stop(pc))
            except Exception as exc:  # noqa: BLE001
                row.fail(f"round {i + 1} on 3 TVs: {describe(exc)}")
                with contextlib.suppress(Exception):
                    await _stop(pc)
        row.left = await _left(pc)
        await trio.sleep(1)  # pychromecast's threads wind down
        _resources(row, pc, before)
    row.notes.append("recovery = /stop answered → last child of pagecast gone")
    row.check("nothing left", row.left == 0)
    row.check("fds flat (Δ ≤ 3)", row.fd_delta is not None and row.fd_delta <= 3)
    row.check("threads flat (Δ ≤ 2)", row.thread_delta is not None and row.thread_delta <= 2)
    row.check("service RSS growth < 10 %", row.rss_growth is not None and row.rss_growth < 0.10)
    return row


# -- 2./3. children killed or hung inside a casting session ------------------------------------


async def _faults(rig: Rig, opts: Options, row: Row, kinds: list[str], repeats: int, freeze_limit: float, recovery_limit: float) -> Row:
    await rig.reset_tvs()
    tv = rig.tvs[0]  # Shaka: a Cast receiver's player
    # A dozen faults in two minutes is past the default intensity (5 renderer restarts in
    # 5 minutes, 3 encoder restarts a minute), after which a session rightly gives up; here
    # it is healing that is measured, so the budgets are raised (giving up is tested in
    # tests/test_supervise.py).
    async with rig.serve("--renderer-restarts", "50", "--encoder-restarts", "50") as pc:
        session = await start_cast(pc, rig.page, tv, keep_on=True)
        outcomes: list[Outcome] = []
        async with _watched(pc, tv, session["id"]) as watch:
            plan = [k for k in kinds for _ in range(repeats)]
            opts.random.shuffle(plan)
            for i, kind in enumerate(plan):
                await trio.sleep(opts.random.uniform(*((1.0, 2.0) if opts.quick else (2.0, 5.0))))
                opts.progress(f"{row.scenario}: {FAULTS[kind].name} ({i + 1}/{len(plan)})")
                out = await inject(pc, watch, FAULTS[kind])
                outcomes.append(out)
                row.runs += 1
                if out.error:
                    row.fail(f"{out.fault.name}: {out.error}")
                    break
                row.recoveries.append(out.recovery)
                await trio.sleep(opts.settle)
                try:  # a stall caught at that instant is counted in stalls; not playing again is a failure
                    await tv.wait_for(lambda st: st["player_state"] == "PLAYING", timeout=SETTLE)
                except TimeoutError:
                    row.fail(f"after {out.fault.name} the TV is {tv.state()['player_state']}, not PLAYING, {opts.settle + SETTLE:g} s after it healed")
            final = await watch.fresh()
        if final.get("state") != "live" or final.get("id") != session["id"]:
            row.fail(f"the session did not stay live: {final.get('state')}")
        row.freeze = round(watch.freeze(), 2)
        row.stalls = watch.stalls.count()
        row.notes.append(f"longest freeze of the TV's player {watch.tv_gaps.longest():.2f} s, of the page's picture in pagecast {watch.picture_gaps.longest():.2f} s")
        by_kind: dict[str, list[float]] = {}
        for out in outcomes:
            if out.recovery is not None:
                by_kind.setdefault(out.fault.name, []).append(out.recovery)
        for name, values in by_kind.items():
            row.notes.append(f"{name}: recovered in {', '.join(f'{v:.2f}' for v in values)} s")
        row.notes.append(f"restarts in /status: {final.get('restarts')} (budgets raised to 50)")
        await _stop(pc)
        row.left = await _left(pc)
    p95 = percentile(row.recoveries, 95)
    row.check(f"recovery p95 ≤ {recovery_limit:g} s", p95 is not None and p95 <= recovery_limit)
    row.check(f"longest freeze ≤ {freeze_limit:g} s", row.freeze is not None and row.freeze <= freeze_limit)
    row.check("nothing left", row.left == 0)
    return row


async def kills(rig: Rig, opts: Options) -> Row:
    kinds = ["kill-ffmpeg", "kill-renderer", "kill-browser"]
    return await _faults(rig, opts, Row("2. SIGKILL of a child"), kinds, 1 if opts.quick else 4, freeze_limit=3.0, recovery_limit=3.0)


async def hangs(rig: Rig, opts: Options) -> Row:
    kinds = ["stop-ffmpeg", "stop-browser"]
    return await _faults(rig, opts, Row("3. SIGSTOP of a child"), kinds, 1 if opts.quick else 3, freeze_limit=6.0, recovery_limit=8.0)


# -- 4. the TV ends the cast -------------------------------------------------------------------


async def device_stops(rig: Rig, opts: Options) -> Row:
    row = Row("4. stop from the TV")
    actions = {
        "remote stop": lambda tv: tv.remote_stop(),
        "another app": lambda tv: tv.launch_app("233637DE", "YouTube"),
        "standby": lambda tv: tv.standby(True),
    }
    repeats = 1 if opts.quick else 3
    tv = rig.tvs[1]
    async with rig.serve() as pc:
        for name, act in actions.items():
            for _ in range(repeats):
                await rig.reset_tvs()
                opts.progress(f"device: {name}")
                row.runs += 1
                try:
                    session = await start_cast(pc, rig.page, tv)
                    await trio.sleep(2)
                    procs = descendants(pc.child.pid)
                    t0 = time.monotonic()
                    act(tv)
                    with trio.fail_after(10):
                        while (await pc.status(session["id"])).get("state") in ("starting", "live", "stopping"):
                            await trio.sleep(0.02)
                    took, left = await gone(procs, 10)
                    if left:
                        row.fail(f"{name}: processes left: {[p.pid for p in left]}")
                    row.recoveries.append(time.monotonic() - t0)
                except Exception as exc:  # noqa: BLE001
                    row.fail(f"{name}: {describe(exc)}")
                    with contextlib.suppress(Exception):
                        await _stop(pc)
        row.left = await _left(pc)
    await rig.reset_tvs()
    row.notes.append("recovery = the TV's action → session ended and its last child gone")
    row.check("all children gone ≤ 2 s", bool(row.recoveries) and max(row.recoveries) <= 2.0)
    row.check("nothing left", row.left == 0)
    return row


# -- 5. the TV's network drops -------------------------------------------------------------------


async def network(rig: Rig, opts: Options) -> Row:
    row = Row("5. TV network drop")
    drops = [5.0] if opts.quick else [5.0, 60.0]
    tv = rig.tvs[1]
    await rig.reset_tvs()
    async with rig.serve() as pc:
        for seconds in drops:
            opts.progress(f"network: {seconds:g} s drop")
            row.runs += 1
            try:
                session = await start_cast(pc, rig.page, tv, keep_on=True)
                await trio.sleep(2)
                tv.drop_network("silent")
                await trio.sleep(seconds)
                tv.restore_network()
                t0 = time.monotonic()
                with trio.fail_after(45):
                    while True:
                        st = await pc.status(session["id"])
                        if st.get("state") != "live":
                            raise RuntimeError(f"the keep_on session ended: {st.get('stop_reason') or st.get('error')}")
                        if tv.state()["player_state"] == "PLAYING" and (st.get("cast") or {}).get("state") == "playing":
                            break
                        await trio.sleep(0.1)
                row.recoveries.append(time.monotonic() - t0)
                row.notes.append(f"{seconds:g} s drop: playing again {row.recoveries[-1]:.2f} s after the network came back "
                                 f"(reconnects {st['cast'].get('reconnects')}, casts {st['cast'].get('casts')})")
                await _stop(pc, session["id"])
            except Exception as exc:  # noqa: BLE001
                row.fail(f"{seconds:g} s drop: {describe(exc)}")
                tv.restore_network()
                with contextlib.suppress(Exception):
                    await _stop(pc)
        row.left = await _left(pc)
    row.notes.append("recovery = network back → the TV plays the session again")
    row.check("re-cast after every drop", len(row.recoveries) == len(drops))
    row.check("nothing left", row.left == 0)
    return row


# -- 6. the service is stopped ---------------------------------------------------------------------


async def shutdown(rig: Rig, opts: Options) -> Row:
    row = Row("6. SIGTERM / SIGKILL of pagecast")
    await rig.reset_tvs()
    for how in (signal.SIGTERM, signal.SIGKILL):
        row.runs += 1
        opts.progress(f"shutdown: {how.name} with {len(rig.tvs)} sessions casting")
        async with rig.serve() as pc:
            try:
                async with trio.open_nursery() as nursery:
                    for tv in rig.tvs:
                        nursery.start_soon(partial(start_cast, pc, rig.page, tv, share=False))
                await trio.sleep(2)
                procs = descendants(pc.child.pid)
                t0 = time.monotonic()
                os.kill(pc.child.pid, how)
                with trio.move_on_after(15):
                    await pc.child.wait()
                exited = time.monotonic() - t0
                took, left = await gone(procs, 5)
                row.recoveries.append(max(exited, took))
                if pc.child.returncode is None:
                    row.fail(f"{how.name}: pagecast still running after 15 s")
                elif how is signal.SIGTERM and pc.child.returncode != 0:
                    row.fail(f"SIGTERM: pagecast exited with {pc.child.returncode}, not 0")
                elif how is signal.SIGTERM and exited > 10:
                    row.fail(f"SIGTERM: took {exited:.1f} s to exit")
                if left:
                    row.fail(f"{how.name}: {len(left)} children survived: {[(p.pid, p.name()) for p in left if p.is_running()]}")
                row.left = (row.left or 0) + len(left)
                if how is signal.SIGTERM:
                    await trio.sleep(0.5)
                    kept = [tv.name for tv in rig.tvs if not tv.state()["idle_screen"]]
                    if kept:
                        row.fail(f"SIGTERM: TVs not given back: {kept}")
                row.notes.append(f"{how.name}: pagecast gone after {exited:.2f} s, its {len(procs)} children after {took:.2f} s")
            except Exception as exc:  # noqa: BLE001
                row.fail(f"{how.name}: {describe(exc)}")
        await rig.reset_tvs()
    row.check("exit 0 within 10 s, TVs given back, no child survives", not row.failures)
    return row


# -- 7. a storm of webhooks ---------------------------------------------------------------------


async def storm(rig: Rig, opts: Options) -> Row:
    row = Row("7. webhook storm")
    count = 40 if opts.quick else 200
    await rig.reset_tvs()
    statuses: dict[int, int] = {}
    async with rig.serve() as pc:
        before = usage(pc.child.pid)

        async def one(i: int) -> None:
            tv = opts.random.choice(rig.tvs)
            try:
                r = await _ask(pc, rig, tv, start=opts.random.random() < 0.6)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code >= 500:
                    row.fail(f"request {i}: HTTP {r.status_code}: {r.text[:200]}")
            except Exception as exc:  # noqa: BLE001
                row.fail(f"request {i}: {type(exc).__name__}: {exc}")

        opts.progress(f"storm: {count} concurrent /start and /stop on {len(rig.tvs)} TVs")
        t0 = time.monotonic()
        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(one, i)
        row.runs = count
        answered = time.monotonic() - t0
        # The last word per TV, after the storm: the final state must follow it.
        last = {tv.host: opts.random.random() < 0.5 for tv in rig.tvs}
        opts.progress("storm: the last request per TV, then wait for the state to settle")
        for tv in rig.tvs:
            r = await _ask(pc, rig, tv, start=last[tv.host], wait=True)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 400:
                row.fail(f"the last request for {tv.name}: HTTP {r.status_code}: {r.text[:200]}")
        t1 = time.monotonic()
        problems: list[str] = []
        with trio.move_on_after(20):
            while True:
                problems = await _storm_problems(pc, rig, last)
                if not problems:
                    break
                await trio.sleep(0.25)
        row.recoveries.append(time.monotonic() - t1)
        row.failures.extend(problems)
        await _stop(pc)
        row.left = await _left(pc)
        _resources(row, pc, before)
    row.notes.append(f"answers: {dict(sorted(statuses.items()))}; the storm was answered in {answered:.1f} s")
    row.notes.append("recovery = the last request per TV → state consistent with it")
    row.check("no 5xx", not any(code >= 500 for code in statuses))
    row.check("state consistent with the last request per TV", not problems)
    row.check("nothing left", row.left == 0)
    return row


async def _ask(pc: Pagecast, rig: Rig, tv: Any, *, start: bool, wait: bool = False):
    """A webhook for ``tv``: start the page on it, or stop what it shows."""
    if start:
        return await pc.client.post("/start?wait=1" if wait else "/start", json={"url": rig.page, "device": tv.host, "quality": "720p"})
    return await pc.client.post("/stop", json={"device": tv.host})


async def _storm_problems(pc: Pagecast, rig: Rig, last: dict[str, bool]) -> list[str]:
    sessions = await active_sessions(pc)
    problems = []
    for tv in rig.tvs:
        mine = [s for s in sessions if _on(s, tv) is not None]  # a session may show several TVs
        on_tv = tv.state()["app_id"] == "CC1AD845" and tv.state()["player_state"] in ("PLAYING", "BUFFERING", "LOADING")
        if last[tv.host]:
            if len(mine) != 1 or mine[0].get("state") != "live":
                problems.append(f"{tv.name}: last request was a start, sessions: {[s.get('state') for s in mine]}")
            elif not on_tv:
                problems.append(f"{tv.name}: last request was a start, the TV shows {tv.state()['app_name']} ({tv.state()['player_state']})")
        else:
            if mine:
                problems.append(f"{tv.name}: last request was a stop, sessions: {[s.get('state') for s in mine]}")
            if tv.state()["app_id"] == "CC1AD845":
                problems.append(f"{tv.name}: our app left on the TV with no session")
    return problems


# -- 8. a busy neighbour ---------------------------------------------------------------------------


async def busy(rig: Rig, opts: Options) -> Row:
    row = Row("8. busy neighbour")
    seconds = 20.0 if opts.quick else opts.busy_seconds
    await rig.reset_tvs()
    async with rig.serve() as pc:
        # The FFmpeg players: Shaka's Chromium would compete for the same two cores as the
        # neighbour and measure the virtual TV's own starvation rather than pagecast's.
        tvs = rig.tvs[1:3]
        sessions = []
        for tv in tvs:
            sessions.append(await start_cast(pc, rig.page, tv, share=False))
        async with contextlib.AsyncExitStack() as stack:
            watches = [await stack.enter_async_context(_watched(pc, tv, s["id"])) for tv, s in zip(tvs, sessions)]
            await trio.sleep(3)  # past the players' start
            played0 = [tv.state()["stats"]["seconds_played"] for tv in tvs]
            opts.progress(f"busy: one core kept busy for {seconds:g} s while {len(tvs)} sessions cast")
            t0 = time.monotonic()
            async with owned([sys.executable, "-c", "while True: pass"], "busy-neighbour"):
                await trio.sleep(seconds)
            wall = time.monotonic() - t0
            played = [tv.state()["stats"]["seconds_played"] - p for tv, p in zip(tvs, played0)]
            finals = [await w.fresh() for w in watches]
        row.runs = len(tvs)
        row.stalls = sum(w.stalls.count() for w in watches)
        row.freeze = round(max(w.freeze() for w in watches), 2)
        pace = [p / wall for p in played]
        row.notes.append(f"played / wall clock on each TV: {', '.join(f'{p:.3f}' for p in pace)} (1.000 = real time)")
        row.notes.append("frames dropped / repeated by pagecast: " + ", ".join(
            f"{f.get('frames', {}).get('dropped')}/{f.get('frames', {}).get('repeated')}" for f in finals))
        await _stop(pc)
        row.left = await _left(pc)
    row.check("0 stalls on the TVs' players", row.stalls == 0)
    row.check("the players keep real time (≥ 0.97)", all(p >= 0.97 for p in pace))
    row.check("nothing left", row.left == 0)
    return row


# -- 9. soak ---------------------------------------------------------------------------------------


async def soak(rig: Rig, opts: Options) -> Row:
    row = Row(f"9. soak, {opts.minutes:g} min")
    length = opts.minutes * 60
    kinds = list(FAULTS)
    gap = (20.0, 40.0) if length <= 300 else (60.0, 150.0)
    # Chromium is also recycled (make-before-break) a few times per session along the way.
    recycle_after = max(120.0, length / 4)
    await rig.reset_tvs()
    async with rig.serve("--renderer-max-age", f"{recycle_after:g}") as pc:
        sessions = []
        for tv in rig.tvs:
            sessions.append(await start_cast(pc, rig.page, tv, keep_on=True, share=False))
        outcomes: list[tuple[Watch, Outcome]] = []
        async with contextlib.AsyncExitStack() as stack:
            watches = [await stack.enter_async_context(_watched(pc, tv, s["id"])) for tv, s in zip(rig.tvs, sessions)]
            at_start = usage(pc.child.pid)
            # warm-up: the service's memory settles, each session's segments filling its window
            await trio.sleep(max(min(120.0, length / 6), 2 * PLAYLIST_WINDOW + 10))
            before = usage(pc.child.pid)
            tree_before = _tree_rss(pc)
            t_end = time.monotonic() + length
            while time.monotonic() < t_end:
                await trio.sleep(min(opts.random.uniform(*gap), max(0.0, t_end - time.monotonic())))
                if time.monotonic() >= t_end - 5:
                    break
                watch = opts.random.choice(watches)
                kind = opts.random.choice(kinds)
                left_min = (t_end - time.monotonic()) / 60
                opts.progress(f"soak: {FAULTS[kind].name} on {watch.tv.name} ({left_min:.1f} min left)")
                out = await inject(pc, watch, FAULTS[kind])
                outcomes.append((watch, out))
                row.runs += 1
                if out.error:
                    row.fail(f"{out.fault.name} on {watch.tv.name}: {out.error}")
                else:
                    row.recoveries.append(out.recovery)
            await trio.sleep(2)
            finals = [await w.fresh() for w in watches]
        for w, f in zip(watches, finals):
            if f.get("state") != "live":
                row.fail(f"{w.tv.name}: the session ended: {f.get('error') or f.get('stop_reason')}")
        windows = {id(w): [o.window for ww, o in outcomes if ww is w] for w in watches}
        row.stalls = sum(w.stalls.count(outside=windows[id(w)]) for w in watches)
        row.freeze = round(max((w.freeze(outside=windows[id(w)]) for w in watches), default=0.0), 2)
        during = max((w.freeze(within=windows[id(w)]) for w in watches if windows[id(w)]), default=0.0)
        row.notes.append(f"{row.runs} faults, {sum(1 for _, o in outcomes if o.recovery is not None)} healed; "
                         f"longest freeze during a fault {during:.2f} s; outside faults: {row.freeze:.2f} s, {row.stalls} stalls")
        row.notes.append("longest freeze outside faults, of the TV's player / of the page's picture in pagecast: " + "; ".join(
            f"{w.tv.name} {w.tv_gaps.longest(outside=windows[id(w)]):.2f} / {w.picture_gaps.longest(outside=windows[id(w)]):.2f} s" for w in watches))
        stalled = [f"{w.tv.name} at {_clock(t)}" for w in watches for t in w.stalls.times if not any(a <= t <= b for a, b in windows[id(w)])]
        if stalled:
            row.notes.append("stalls outside faults: " + ", ".join(stalled))
        row.notes.append("restarts in /status: " + "; ".join(f"{w.tv.name}: {f.get('restarts')}" for w, f in zip(watches, finals)))
        recycles = [((f.get("children") or {}).get("renderer") or {}).get("recycles") for f in finals]
        row.notes.append(f"Chromium recycled make-before-break every {recycle_after:g} s: {recycles} times per session (not faults: their swaps count as 'outside')")
        _resources(row, pc, before)
        after = usage(pc.child.pid)
        if at_start and before and after:
            row.notes.append(f"RSS of the service: {at_start.rss / 2**20:.0f} MiB with its sessions started, "
                             f"{before.rss / 2**20:.0f} after the warm-up, {after.rss / 2**20:.0f} at the end")
        tree_after = _tree_rss(pc)
        row.notes.append(f"RSS of pagecast with its children: {tree_before / 2**20:.0f} → {tree_after / 2**20:.0f} MiB")
        await _stop(pc)
        row.left = await _left(pc)
    row.check("every fault healed", not row.failures and row.runs > 0)
    row.check("0 stalls outside faults", row.stalls == 0)
    row.check("longest freeze outside faults ≤ 1.5 s", row.freeze is not None and row.freeze <= 1.5)
    row.check("service RSS growth < 10 %", row.rss_growth is not None and row.rss_growth < 0.10)
    row.check("fds flat (Δ ≤ 3)", row.fd_delta is not None and row.fd_delta <= 3)
    row.check("nothing left", row.left == 0)
    return row


def _clock(monotonic: float) -> str:
    """A time.monotonic() as the wall-clock time the service's log shows."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() - (time.monotonic() - monotonic)))


def _tree_rss(pc: Pagecast) -> int:
    total = 0
    for p in descendants(pc.child.pid):
        with contextlib.suppress(Exception):
            total += p.memory_info().rss
    u = usage(pc.child.pid)
    return total + (u.rss if u else 0)


# -- 10. one render, three screens, one TV hurt -----------------------------------------------


#: The service's give-up on a TV that stays unreachable, shortened so that a drop past it is quick.
SCREENS_GIVE_UP = 5.0
#: A brief drop: longer than the service takes to notice one (cast_liveness_timeout, 3 s).
BRIEF_DROP = 6.0
REBOOT_DOWNTIME = 2.0


def _screen(status: dict[str, Any], tv: Any) -> dict[str, Any] | None:
    """The session's screen on ``tv`` still on, else the last one it had there."""
    mine = [s for s in status.get("screens") or [] if s.get("address") == tv.host]
    on = [s for s in mine if s.get("ended") is None]
    return on[0] if on else (mine[-1] if mine else None)


def _on(status: dict[str, Any], tv: Any) -> dict[str, Any] | None:
    screen = _screen(status, tv)
    return screen if screen is not None and screen.get("ended") is None else None


def _plays(status: dict[str, Any], tv: Any) -> bool:
    """pagecast's screen on ``tv`` plays, and so does the TV's player."""
    screen = _on(status, tv)
    return screen is not None and screen.get("state") == "playing" and tv.state()["player_state"] == "PLAYING"


async def _until(pc: Pagecast, sid: str, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
    """The session's first status for which ``done`` holds; an error if the session stops being
    live first, or after ``timeout``."""
    st: dict[str, Any] = {}
    with trio.move_on_after(timeout):
        while True:
            st = await pc.status(sid)
            if st.get("state") != "live":
                raise RuntimeError(f"the session is {st.get('state')}: {st.get('error') or st.get('stop_reason')}")
            if done(st):
                return st
            await trio.sleep(0.1)
    raise RuntimeError(f"not within {timeout:g} s: {what} (screens: {[(s.get('device'), s.get('state'), s.get('ended')) for s in st.get('screens') or []]})")


async def _add_back(pc: Pagecast, sid: str, tv: Any, **options: Any) -> dict[str, Any]:
    r = await pc.client.post(f"/sessions/{sid}/screens?wait=1", json={"device": tv.host, **options})
    if r.status_code != 202:
        raise RuntimeError(f"POST /sessions/…/screens for {tv.name}: HTTP {r.status_code}: {r.text[:300]}")
    return await _until(pc, sid, lambda st: _plays(st, tv), 20, f"{tv.name} plays its new screen")


async def _hurt_remote_stop(pc: Pagecast, sid: str, tv: Any) -> tuple[float, str]:
    t0 = time.monotonic()
    tv.remote_stop()
    st = await _until(pc, sid, lambda st: _on(st, tv) is None, 10, "the screen ends")
    ended = _screen(st, tv)["ended"]
    await _add_back(pc, sid, tv)
    return time.monotonic() - t0, f"screen ended ({ended}), added back"


async def _hurt_brief_drop(pc: Pagecast, sid: str, tv: Any) -> tuple[float, str]:
    before = _on(await pc.status(sid), tv) or {}
    tv.drop_network("silent")
    await trio.sleep(BRIEF_DROP)
    tv.restore_network()
    t0 = time.monotonic()
    st = await _same_screen_back(pc, sid, tv, before, "reconnects", 30, "the same screen reconnected and plays")
    return time.monotonic() - t0, f"same screen, reconnects {_on(st, tv)['reconnects']}"


async def _hurt_long_drop(pc: Pagecast, sid: str, tv: Any) -> tuple[float, str]:
    tv.drop_network("silent")
    try:
        st = await _until(pc, sid, lambda st: _on(st, tv) is None, SCREENS_GIVE_UP + 30, "the screen gives the TV up")
    finally:
        tv.restore_network()
    t0 = time.monotonic()
    ended = _screen(st, tv)["ended"]
    await _add_back(pc, sid, tv, keep_on=True)  # a screen of its own options: the reboot next is healed by keep_on
    return time.monotonic() - t0, f"screen ended ({ended}), added back with keep_on"


async def _hurt_reboot(pc: Pagecast, sid: str, tv: Any) -> tuple[float, str]:
    before = _on(await pc.status(sid), tv) or {}
    await tv.restart(downtime=REBOOT_DOWNTIME)
    t0 = time.monotonic()
    st = await _same_screen_back(pc, sid, tv, before, "casts", 45, "the keep_on screen cast the stream again")
    return time.monotonic() - t0, f"same screen cast again (casts {_on(st, tv)['casts']})"


async def _same_screen_back(pc: Pagecast, sid: str, tv: Any, before: dict[str, Any], counter: str, within: float, what: str) -> dict[str, Any]:
    """Until the screen that was on before plays again, its ``counter`` (reconnects, casts)
    grown; a screen that ended instead fails the fault."""

    def back(st: dict[str, Any]) -> bool:
        screen = _on(st, tv)
        if screen is None:
            raise RuntimeError(f"the screen ended: {(_screen(st, tv) or {}).get('ended')}")
        return screen["since"] == before.get("since") and screen[counter] > before.get(counter, 0) and _plays(st, tv)

    return await _until(pc, sid, back, within, what)


async def _hurt_removed(pc: Pagecast, sid: str, tv: Any) -> tuple[float, str]:
    t0 = time.monotonic()
    r = await pc.client.delete(f"/sessions/{sid}/screens/{tv.host}")
    if r.status_code != 200:
        raise RuntimeError(f"DELETE /sessions/…/screens/{tv.host}: HTTP {r.status_code}: {r.text[:300]}")
    await tv.wait_for(lambda s: s["idle_screen"], timeout=10)
    await _until(pc, sid, lambda st: _on(st, tv) is None, 10, "the screen ends")
    await _add_back(pc, sid, tv)
    return time.monotonic() - t0, "given back to its idle screen, added back"


SCREEN_FAULTS: dict[str, Callable[[Pagecast, str, Any], Awaitable[tuple[float, str]]]] = {
    "remote stop": _hurt_remote_stop,
    f"{BRIEF_DROP:g} s network drop": _hurt_brief_drop,
    "network drop past the give-up": _hurt_long_drop,
    "reboot": _hurt_reboot,
    "taken off over the API": _hurt_removed,
}


class _RenderCount:
    """The service's Chromium browsers and FFmpegs, sampled twice a second: one render is one of each."""

    def __init__(self, service_pid: int):
        self.pid = service_pid
        self.samples = 0
        self.off: list[tuple[int, int]] = []  # (browsers, ffmpegs) of the samples that were not (1, 1)

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            procs = await trio.to_thread.run_sync(descendants, self.pid)
            seen = (sum(1 for p in procs if is_browser(p)), sum(1 for p in procs if is_ffmpeg(p)))
            self.samples += 1
            if seen != (1, 1):
                self.off.append(seen)
            await trio.sleep(0.5)


async def screens(rig: Rig, opts: Options) -> Row:
    row = Row("10. one render, 3 screens")
    rounds = 1 if opts.quick else 3
    healthy, hurt = rig.tvs[:2], rig.tvs[2]
    freeze_limit = 1.5
    await rig.reset_tvs()
    async with rig.serve("--cast-give-up", f"{SCREENS_GIVE_UP:g}") as pc:
        r = await pc.client.post("/start?wait=1", json={"url": rig.page, "device": [tv.host for tv in rig.tvs], "quality": "720p"})
        session = r.json()
        if r.status_code >= 400 or session.get("state") != "live" or not all(_plays(session, tv) for tv in rig.tvs):
            raise RuntimeError(f"/start on 3 TVs: HTTP {r.status_code}: {session.get('error') or r.text[:300]}")
        sid = session["id"]
        recoveries: dict[str, list[float]] = {}
        endings: list[str] = []
        windows: list[tuple[float, float]] = []  # from each fault to its recovery
        count = _RenderCount(pc.child.pid)
        async with contextlib.AsyncExitStack() as stack:
            watches = [await stack.enter_async_context(_watched(pc, tv, sid)) for tv in healthy]
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(count.run)
            for i in range(rounds):
                if (await pc.status(sid)).get("state") != "live":
                    break
                for name, hurt_it in SCREEN_FAULTS.items():
                    await trio.sleep(opts.random.uniform(*((1.0, 2.0) if opts.quick else (2.0, 5.0))))
                    opts.progress(f"screens: {name} on {hurt.name} ({i + 1}/{rounds})")
                    row.runs += 1
                    t_fault = time.monotonic()
                    try:
                        took, note = await hurt_it(pc, sid, hurt)
                        windows.append((t_fault, time.monotonic()))
                        recoveries.setdefault(name, []).append(took)
                        row.recoveries.append(took)
                        if i == 0:
                            endings.append(f"{name}: {note}")
                    except Exception as exc:  # noqa: BLE001 - a fault not healed is a figure
                        row.fail(f"{name}: {describe(exc)}")
                        hurt.restore_network()
                        st = await pc.status(sid)
                        if st.get("state") != "live":
                            break
                        if _on(st, hurt) is None:
                            with contextlib.suppress(Exception):
                                await _add_back(pc, sid, hurt)
            await trio.sleep(2)
            final = await watches[0].fresh()
            nursery.cancel_scope.cancel()
        if final.get("state") != "live" or final.get("id") != sid:
            row.fail(f"the session did not stay live: {final.get('state')} ({final.get('error') or final.get('stop_reason')})")
        row.freeze = round(max(w.freeze() for w in watches), 2)
        row.stalls = sum(w.stalls.count() for w in watches)
        theirs = [_on(final, tv) or {} for tv in healthy]
        untouched = all(s.get("casts") == 1 and s.get("reconnects") == 0 and s.get("stalls") == 0 for s in theirs)
        row.notes.append("the 2 other TVs: longest freeze of their players " + ", ".join(f"{w.tv_gaps.longest():.2f} s" for w in watches)
                         + f", of the page's picture in pagecast {max(w.picture_gaps.longest() for w in watches):.2f} s"
                         + "; stalls of their players " + ", ".join(str(w.stalls.count()) for w in watches)
                         + "; in /status (casts, reconnects, stalls) " + ", ".join(f"{s.get('casts')}/{s.get('reconnects')}/{s.get('stalls')}" for s in theirs))
        row.notes.append(f"the 2 other TVs' longest freeze while the third was hurt {max(w.freeze(within=windows) for w in watches):.2f} s, "
                         f"otherwise {max(w.freeze(outside=windows) for w in watches):.2f} s")
        row.notes.append(f"one render: {count.samples} samples of the service's processes, {len(count.off)} not 1 Chromium + 1 FFmpeg {count.off[:5]}; "
                         f"restarts {final.get('restarts')}")
        row.notes.extend(f"{hurt.name}: {e}" for e in endings)
        for name, values in recoveries.items():
            row.notes.append(f"{name}: recovered in {', '.join(f'{v:.2f}' for v in values)} s")
        row.notes.append("recovery = the TV back (its action, the network back, the reboot over) → its screen plays again (added back where it ended)")
        await _stop(pc)
        row.left = await _left(pc)
    row.check("session live throughout, one render (1 Chromium, 1 FFmpeg, no restart)",
              not count.off and count.samples > 0 and not any((final.get("restarts") or {}).values()))
    row.check("the other TVs: 0 stalls", row.stalls == 0 and untouched)
    row.check(f"the other TVs: longest freeze ≤ {freeze_limit:g} s", row.freeze is not None and row.freeze <= freeze_limit)
    row.check("nothing left", row.left == 0)
    return row


SCENARIOS: dict[str, Scenario] = {
    "cycles": cycles,
    "kill": kills,
    "hang": hangs,
    "device": device_stops,
    "network": network,
    "shutdown": shutdown,
    "storm": storm,
    "busy": busy,
    "soak": soak,
    "screens": screens,
}
