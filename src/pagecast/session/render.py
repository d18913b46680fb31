"""The renderer: headless Chromium draws a page only when we ask, and we keep the frames that changed.

One renderer owns one Chromium (``open_child``), one DevTools connection and one page target
created with begin-frame control. It ticks on a steady grid of slots at ``spec.fps``: every
``busy_step``-th slot while the page changes (``capture_fps``), fewer while it is quiet
(``core.schedule``). Each tick is a ``HeadlessExperimental.beginFrame`` that runs timers/rAF
and draws. Only when that frame reported damage do we capture it (the first change after a
quiet spell one tick later, after its burst), with a *second* begin-frame at the same frame
time, ``noDisplayUpdates: true`` and a screenshot. That second frame draws nothing new (and
runs no second rAF), it just reads back what the first one drew.

Why not the obvious "screenshot on the tick after damage": a begin-frame that takes a
screenshot always reports damage itself *and* makes the next normal frame report damage, so
that loop either shoots every other tick or has to ignore the damage of the tick after each
shot (and so misses a real change that lands on it). A ``noDisplayUpdates`` screenshot frame
leaves no such echo (measured on Chromium 156; see tests/test_render.py).

Device scale factor: ``Emulation.setDeviceMetricsOverride`` does set ``devicePixelRatio``, but
begin-frame screenshots then come out at the *CSS* size (960×540 for 1920×1080 at 2). So the
scale is given to Chromium with ``--force-device-scale-factor`` and the window is made
``width/dsf × height/dsf`` CSS pixels; Chromium's surface is the ceiling of CSS size × scale,
and :func:`window_geometry` picks sizes (and nudges the scale a hair when they don't divide)
so that the surface is exactly the output size.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import trio
import trio_websocket

from ..core import appearance
from ..core.credentials import cookie_params, origin, storage_script
from ..core.errors import RenderError
from ..core.geometry import window_geometry
from ..core.page import EVENTS, Dismiss, Fail, Frame, PageSpec, PageState, http_error, interpret, navigating, settled
from ..core.request import redact_urls_in
from ..core.schedule import Pace, deep_idle_step, frame_time_ms, next_slot
from ..core.settings import FPS_RANGE, Settings, setting_words
from ..lowlevel.cdp import ANY_SESSION, CdpConnection, CdpConnectionClosed, CdpError, CdpException, CdpSession, CdpTimeout, open_cdp
from ..lowlevel.groups import one_error
from ..lowlevel.proc import Child, LineTail, StopPolicy, open_child, pump_lines
from .chromium import chromium_argv, chromium_binary, chromium_log, devtools_url, last_lines, runtime_base
from .mailbox import Mailbox

log = logging.getLogger(__name__)

#: Empty read-backs in a row after which a screenshot is taken by a frame that draws.
EMPTY_READBACKS_BEFORE_DRAWN_SHOT = 3
#: Seconds a loaded page may take to give its first picture. A Chromium whose read-backs all
#: come back empty (seen rarely, after a crash on a busy machine) never will: a new one does,
#: and the load timeout (30 s) is too long a still picture to wait for that.
FIRST_PICTURE_TIMEOUT = 5.0
#: Seconds one begin-frame may take while the page loads (scripts and layout of a big
#: dashboard run then) before Chromium counts as hung; without it a hung new Chromium would
#: keep a restarted session's picture still for the whole load timeout.
LOADING_FRAME_TIMEOUT = 10.0

# ---------------------------------------------------------------------------------------
# The renderer


class Browser:
    """One renderer's Chromium as its owner sees it, for recycling and /status: filled in by
    ``run_renderer`` as it goes. ``pid`` is set while Chromium runs; ``launched`` and
    ``last_frame_at`` are on Trio's clock, ``launched_wall`` on the wall clock. ``stats`` is
    the renderer's counters (a session shares one dict among its Chromiums)."""

    def __init__(self, stats: dict | None = None) -> None:
        self.stats: dict = stats if stats is not None else {}
        self.pid: int | None = None
        self.launched: float | None = None
        self.launched_wall: float | None = None
        self.last_frame_at: float | None = None
        self._child: Child | None = None

    async def memory(self) -> int | None:
        """Bytes Chromium's process tree holds (``lowlevel.proc.tree_memory``); None when it
        is not running. Read in a worker thread: /proc of a big renderer takes milliseconds."""
        child = self._child
        if child is None:
            return None
        return await trio.to_thread.run_sync(child.tree_memory, abandon_on_cancel=True)

    def _started(self, child: Child) -> None:
        self._child, self.pid = child, child.pid
        self.launched, self.launched_wall = trio.current_time(), time.time()

    def _stopped(self) -> None:
        self._child = self.pid = None


class _Renderer:
    """The actor around one page: it reads DevTools events and the clock, asks ``core.page``
    what they mean and ``core.schedule`` when to tick, and carries out the answers."""

    def __init__(self, spec: PageSpec, settings: Settings, frames: trio.MemorySendChannel[Frame], browser: Browser, child: Child, tail: LineTail):
        self.spec = spec
        self.settings = settings
        self.browser = browser
        self.stats = browser.stats
        self.child = child
        self.tail = tail
        self.mailbox = Mailbox(frames, self.stats)
        self.scope = trio.CancelScope()
        self.failure: RenderError | None = None
        self.hung = False  # stopped answering DevTools: no polite stop will reach it
        self.state = PageState(spec.url, last_activity=trio.current_time())
        self.target_id = ""
        self.session: CdpSession | None = None
        self.stderr_done = trio.Event()
        self.interval = 1.0 / spec.fps
        self.step = 1
        # Chromium's frame times are CLOCK_MONOTONIC milliseconds; Trio's clock has an offset.
        self._clock_offset = trio.current_time() - time.monotonic()
        self._deadline = trio.current_time()
        self._frame_index = 0
        self._dialog_requests: list[bool] = []
        self._dialog_event = trio.Event()
        self._empty_streak = 0

    # -- failures -------------------------------------------------------------------------

    def fail(self, error: RenderError) -> None:
        if self.failure is None:
            self.failure = error
            log.info("renderer failing: %s", error)
        self.scope.cancel()

    async def _exit_error(self) -> RenderError:
        with trio.move_on_after(2):
            await self.child.wait()
        with trio.move_on_after(1):
            await self.stderr_done.wait()
        rc = self.child.returncode
        how = "is not answering" if rc is None else f"exited unexpectedly ({self.child!r})"
        return RenderError(f"Chromium {how} while showing {self.spec.shown_url}; its last output: {last_lines(self.tail)}")

    # -- background watchers -----------------------------------------------------------------

    async def watch_process(self) -> None:
        await self.child.wait()
        self.fail(await self._exit_error())

    async def watch_events(self, cdp: CdpConnection, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with cdp.listen(*EVENTS, session_id=ANY_SESSION) as events:
            task_status.started()
            async for event in events:
                self.state, outcome = interpret(
                    self.state, event.method, event.params, event.session_id,
                    main_target=self.target_id,
                    our_session=self.session.session_id if self.session else None,
                    now=trio.current_time(),
                    requested_url=self.spec.shown_url,
                    login_paths=self.spec.login_paths,
                )
                if isinstance(outcome, Fail):
                    self.fail(RenderError(outcome.message, kind=outcome.kind))
                elif isinstance(outcome, Dismiss):
                    log.info("page opened a %s dialog; dismissing it", outcome.kind)
                    # A dialog blocks the page (and its frames) until answered: answer_dialogs does.
                    self._dialog_requests.append(outcome.accept)
                    self._dialog_event.set()

    async def answer_dialogs(self) -> None:
        while True:
            await self._dialog_event.wait()
            self._dialog_event = trio.Event()
            while self._dialog_requests:
                accept = self._dialog_requests.pop(0)
                try:
                    await self.session.execute("Page.handleJavaScriptDialog", {"accept": accept}, timeout=5)
                except CdpException as exc:
                    log.debug("could not dismiss dialog: %s", exc)

    # -- frames -----------------------------------------------------------------------------

    async def _next_tick(self) -> float:
        """Sleep until the next slot of the schedule (``core.schedule``) and return it."""
        self._deadline = next_slot(self._deadline, trio.current_time(), self.interval, self.step)
        await trio.sleep_until(self._deadline)
        return self._deadline

    async def _begin_frame(self, params: dict, timeout: float | None) -> dict | None:
        """One begin-frame; None if Chromium is still busy with the previous one (it says
        "Another frame is pending" now and then, e.g. right after load): skip the slot."""
        try:
            return await self.session.execute("HeadlessExperimental.beginFrame", params, timeout=timeout)
        except CdpError as exc:
            if "pending" not in exc.message.lower():
                raise
            self.stats["busy_ticks"] = self.stats.get("busy_ticks", 0) + 1
            log.debug("begin-frame skipped: %s", exc.message)
            return None

    async def tick(self, capture: bool | None, timeout: float | None) -> tuple[bool, Frame | None]:
        """One slot: a drawing begin-frame, then a read-back of what it drew if it drew
        anything (``capture=False``), always (``True``) or never (``None``)."""
        deadline = await self._next_tick()
        # The frame's time is its slot on the schedule: Chromium runs rAF and animations for
        # that instant, and the encoder gets timestamps exactly on the fps grid (OS wake-up
        # jitter, the only difference from "now", would otherwise shift frames between slots).
        frame_time = frame_time_ms(deadline, self._clock_offset)
        interval_ms = self.interval * 1000.0
        issued = deadline
        result = await self._begin_frame({"frameTimeTicks": frame_time, "interval": interval_ms}, timeout)
        if result is None:
            return False, None
        self.stats["ticks"] += 1
        damaged = bool(result.get("hasDamage"))
        if damaged:
            self.stats["damaged_ticks"] += 1
        if capture is None or not (damaged or capture):
            return damaged, None
        screenshot = {"format": "jpeg", "quality": self.spec.jpeg_quality}
        if self._empty_streak < EMPTY_READBACKS_BEFORE_DRAWN_SHOT:
            shot = await self._begin_frame(
                {"frameTimeTicks": frame_time, "interval": interval_ms, "noDisplayUpdates": True, "screenshot": screenshot},
                timeout,
            )
        else:
            shot = await self._drawn_shot(frame_time, interval_ms, screenshot, timeout)
        data = shot.get("screenshotData") if shot else None
        if not data:
            self.stats["empty_shots"] = self.stats.get("empty_shots", 0) + 1
            self._empty_streak += 1
            return damaged, None  # can happen while the renderer initialises
        self._empty_streak = 0
        frame = Frame(base64.b64decode(data), issued, self._frame_index)
        self._frame_index += 1
        self.browser.last_frame_at = issued
        self.stats["frames_captured"] += 1
        return damaged, frame

    async def _drawn_shot(self, frame_time: float, interval_ms: float, screenshot: dict, timeout: float | None) -> dict | None:
        """A read-back that keeps coming back empty (seen rarely, right after load on a busy
        machine) is replaced by a screenshot taken in a frame that draws: slower, and it
        echoes damage into the next frame, but it always has a picture to read."""
        self.stats["drawn_shots"] = self.stats.get("drawn_shots", 0) + 1
        if self.stats["drawn_shots"] == 1:
            log.warning("Chromium's read-back of %s came back empty %d times in a row; taking a screenshot in a drawing frame",
                        self.spec.shown_url, self._empty_streak)
        return await self._begin_frame(
            {"frameTimeTicks": frame_time + interval_ms / 2, "interval": interval_ms, "screenshot": screenshot}, timeout,
        )

    # -- phases -----------------------------------------------------------------------------

    async def open_page(self, cdp: CdpConnection) -> None:
        spec = self.spec
        css_w, css_h, _ = window_geometry(spec.width, spec.height, spec.device_scale_factor)
        await cdp.execute("Target.setDiscoverTargets", {"discover": True})
        try:
            target = await cdp.execute(
                "Target.createTarget",
                {"url": "about:blank", "width": css_w, "height": css_h, "enableBeginFrameControl": True},
            )
        except CdpError as exc:
            product = (await cdp.execute("Browser.getVersion")).get("product", "?")
            raise RenderError(
                f"{chromium_binary(self.settings)} ({product}) cannot render with begin-frame control ({exc.message}); "
                "install Chromium's headless shell (Debian package chromium-headless-shell) and set "
                "PAGECAST_CHROMIUM=/usr/bin/chromium-headless-shell"
            ) from None
        self.target_id = target["targetId"]
        # The shell opens an about:blank page of its own at startup: close it.
        for info in (await cdp.execute("Target.getTargets")).get("targetInfos", []):
            if info.get("type") == "page" and info.get("targetId") != self.target_id:
                try:
                    await cdp.execute("Target.closeTarget", {"targetId": info["targetId"]})
                except CdpError:
                    pass
        attached = await cdp.execute("Target.attachToTarget", {"targetId": self.target_id, "flatten": True})
        self.session = cdp.session(attached["sessionId"])

    async def setup_page(self) -> None:
        s = self.session
        auth = self.spec.auth
        await s.execute("Inspector.enable")
        await s.execute("Page.enable")
        await s.execute("Network.enable", {"maxTotalBufferSize": 1 << 20, "maxResourceBufferSize": 1 << 18})
        log.debug(
            "auth for %s: %d cookies, %d localStorage items, %d headers, HA token: %s",
            origin(self.spec.url), len(auth.cookies), len(auth.local_storage), len(auth.headers), "refresh token" if auth.ha_refresh_token else "yes" if auth.ha_token else "no",
        )
        if auth.cookies:
            cookies = cookie_params(self.spec.url, self.spec.auth)
            try:
                await s.execute("Network.setCookies", {"cookies": cookies})
            except CdpError as exc:
                names = ", ".join(str(c.get("name")) for c in cookies)
                raise RenderError(f"Chromium refused the cookies ({names}): {exc.message} — check their domain/url and path") from None
        if auth.headers:
            await s.execute("Network.setExtraHTTPHeaders", {"headers": dict(auth.headers)})
        look = self.spec.appearance
        stored = appearance.local_storage(look)
        if auth.local_storage or auth.signs_in_to_ha or stored:
            script = storage_script(self.spec.url, self.spec.auth, defaults=stored)
            await s.execute("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        for script in appearance.scripts(look):
            await s.execute("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        features = appearance.media_features(look)
        if features:
            await s.execute("Emulation.setEmulatedMedia", {"features": features})
        rate = appearance.animation_rate(look)
        if rate is not None:
            # Without Animation.enable: enabled, Chromium keeps every animation it reports
            # until released, and a dashboard runs for days.
            await s.execute("Animation.setPlaybackRate", {"playbackRate": rate})

    async def load(self) -> None:
        """Navigate and tick frames until the page has loaded and settled (or fail)."""
        spec = self.spec
        try:
            with trio.fail_after(spec.load_timeout), one_error(RenderError, KeyboardInterrupt):
                async with trio.open_nursery() as nursery:
                    # Tick while loading: with begin-frame control nothing runs rAF or paints
                    # between our frames, so the page has to be driven while it loads.
                    loaded = trio.Event()
                    nursery.start_soon(self._tick_while_loading, loaded)
                    await self._navigate()
                    loaded.set()
        except trio.TooSlowError:
            raise RenderError(
                f"{spec.shown_url} did not finish loading within {spec.load_timeout:g} s — check that the page and "
                f"everything it loads are reachable from this server, or raise {setting_words('load_timeout')}"
            ) from None
        error = http_error(self.state)
        if error:
            raise RenderError(error)
        if not spec.auth.headers:
            # Network events are only needed while loading; a live dashboard would otherwise
            # send us every WebSocket message it receives.
            await self.session.execute("Network.disable")

    async def _navigate(self) -> None:
        spec = self.spec
        self.state = navigating(self.state, trio.current_time())
        result = await self.session.execute("Page.navigate", {"url": spec.url}, timeout=None)
        error = result.get("errorText")
        if error:
            raise RenderError(f"could not load {spec.shown_url}: {error} — check the URL and that this server can reach it")
        if result.get("isDownload"):
            raise RenderError(f"{spec.shown_url} is a file download, not a page — check the URL")
        while not settled(self.state, trio.current_time()):
            await trio.sleep(self.interval / 2)

    async def _tick_while_loading(self, loaded: trio.Event) -> None:
        """Tick until loaded; a begin-frame in flight is let finish, never cancelled (a
        cancelled one stays pending in Chromium, which then refuses the next ones), unless it
        takes so long that Chromium is hung (CdpTimeout: this Chromium is killed)."""
        timeout = max(LOADING_FRAME_TIMEOUT, self.settings.renderer_hang_timeout)
        while not loaded.is_set():
            await self.tick(capture=None, timeout=timeout)

    async def first_frame(self) -> Frame:
        with trio.move_on_after(FIRST_PICTURE_TIMEOUT) as scope:
            while True:
                _, frame = await self.tick(capture=True, timeout=self.spec.frame_timeout)
                if frame is not None:
                    return frame
        assert scope.cancelled_caught
        st = self.stats
        raise RenderError(
            f"{self.spec.shown_url} loaded but Chromium produced no picture of it in {FIRST_PICTURE_TIMEOUT:g} s "
            f"({st.get('ticks', 0)} frames drawn, {st.get('busy_ticks', 0)} refused as busy, {st.get('empty_shots', 0)} empty); restart the session",
            kind="no_picture",
        )

    async def stream(self) -> None:
        """Tick and hand over each changed frame, at the pace ``core.schedule.Pace`` keeps."""
        pace = Pace(self.step, trio.current_time())
        deep_step = deep_idle_step(self.spec.fps)
        while True:
            damaged, frame = await self.tick(capture=pace.capture(), timeout=self.spec.frame_timeout)
            if frame is not None:
                self.mailbox.put(frame)
            pace = pace.after(damaged, frame is not None, trio.current_time(), busy_step=self.spec.busy_step, deep_step=deep_step)
            self.step = pace.step

    async def burn_in(self, period: float) -> None:
        """Burn-in protection: every ``period`` seconds the page moves to its next place
        (``core.appearance.burn_in_move``); the next tick draws it, one changed frame."""
        n = 0
        while True:
            await trio.sleep(period)
            n += 1
            try:
                await self.session.execute("Runtime.evaluate", {"expression": appearance.burn_in_move(n)}, timeout=self.spec.frame_timeout)
            except CdpException as exc:
                # A page too busy to answer (or a Chromium gone) is the ticks' to judge: it
                # fails the renderer there, with its reason, and a new Chromium takes over.
                log.debug("burn-in move not made: %s", exc)

    async def run(self, cdp: CdpConnection, nursery: trio.Nursery, task_status) -> None:
        with self.scope:
            try:
                nursery.start_soon(self.watch_process)
                await nursery.start(self.watch_events, cdp)
                await self.open_page(cdp)
                nursery.start_soon(self.answer_dialogs)
                await self.setup_page()
                self._deadline = trio.current_time()
                await self.load()
                first = await self.first_frame()
                self.mailbox.put(first)
                nursery.start_soon(self.mailbox.run)
                if self.spec.appearance.burn_in > 0:
                    nursery.start_soon(self.burn_in, self.spec.appearance.burn_in)
                log.info(
                    "rendering %s at %d×%d (scale %g), %d fps",
                    self.spec.shown_url, self.spec.width, self.spec.height, self.spec.device_scale_factor, self.spec.fps,
                )
                task_status.started()
                await self.stream()
            except CdpConnectionClosed:
                self.fail(await self._exit_error())
            except CdpError as exc:
                self.fail(RenderError(f"Chromium refused {exc.method} ({exc.message}) for {self.spec.shown_url}; restart the session"))
            except CdpTimeout as exc:
                self.hung = True
                # Killed now, not at the stop: closing DevTools to a stopped browser would
                # wait out its close handshake, and every second here is a frozen picture.
                self.child.signal_group(signal.SIGKILL)
                self.fail(RenderError(
                    f"the page {self.spec.shown_url} stopped drawing ({exc}); a script may be stuck — restart the session",
                    kind="hang",
                ))
        if self.failure is not None:
            raise self.failure
        raise RenderError("the renderer stopped unexpectedly")  # pragma: no cover


async def run_renderer(
    spec: PageSpec,
    settings: Settings,
    frames: trio.MemorySendChannel[Frame],
    *,
    task_status=trio.TASK_STATUS_IGNORED,
    stats: dict | None = None,
    browser: Browser | None = None,
) -> None:
    """Render ``spec`` until cancelled, sending a :class:`Frame` on ``frames`` whenever the page changed.

    Use as ``await nursery.start(run_renderer, spec, settings, send_channel)``: ``start``
    returns once the page has loaded and its first frame was handed over (sent, or waiting
    to be sent if the channel is full). Raises :class:`RenderError` (before or after
    starting) when the page cannot be loaded or the browser/page crashes. Never blocks on a
    slow consumer: an undelivered frame is replaced by a newer one. Does not close ``frames``.
    ``stats`` (if given) is updated live from launch on: ticks (begin-frames that may draw,
    including those while loading), damaged_ticks (of those, the ones that changed the
    picture), frames_captured, frames_dropped (replaced before the consumer took them).
    ``Frame.captured_at`` is on Trio's clock (``trio.current_time()``), which is
    ``time.perf_counter()`` plus a random offset, not ``time.monotonic()``.
    ``browser`` (if given) is kept up to date with Chromium's pid, start and last frame, and
    can measure its memory; its ``stats`` are the stats (``stats`` wins if both are given).
    ``frames`` may be anything with a memory channel's ``send_nowait`` and ``send``.
    """
    browser = browser if browser is not None else Browser()
    if stats is not None:
        browser.stats = stats
    stats = browser.stats
    for key in ("ticks", "damaged_ticks", "frames_captured", "frames_dropped"):
        stats.setdefault(key, 0)  # a renderer restarted inside its session counts on
    if not FPS_RANGE[0] <= spec.fps <= FPS_RANGE[1]:
        raise RenderError(f"fps must be between {FPS_RANGE[0]} and {FPS_RANGE[1]}, not {spec.fps}")
    if not 1 <= spec.jpeg_quality <= 100:
        raise RenderError(f"{setting_words('jpeg_quality')} must be between 1 and 100, not {spec.jpeg_quality}")
    window_geometry(spec.width, spec.height, spec.device_scale_factor)  # fails early if impossible
    if not shutil.which(chromium_binary(settings)):
        raise RenderError(
            f"cannot run Chromium: {chromium_binary(settings)!r} is not found or not executable — install the Debian package "
            "chromium-headless-shell or set PAGECAST_CHROMIUM to Chromium's headless shell"
        )
    runtime = runtime_base(settings)
    try:
        runtime.mkdir(parents=True, exist_ok=True)
        profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=runtime))
    except OSError as exc:
        raise RenderError(f"cannot create Chromium's profile directory in {runtime}: {exc.strerror} — check PAGECAST_RUNTIME_DIR") from None
    ws_url: list[str] = []
    renderers: list[_Renderer] = []

    async def polite(child: Child) -> None:
        if renderers and renderers[0].hung:
            child.signal_group(signal.SIGKILL)  # a stopped or stuck browser answers nothing
            return
        if not ws_url:
            # Still starting: no DevTools to ask yet, and waiting for it to exit by itself would
            # cost the whole polite timeout. SIGTERM is Chromium's own clean shutdown.
            child.signal_group(signal.SIGTERM)
            return
        try:
            async with open_cdp(ws_url[0], connect_timeout=1.0, disconnect_timeout=0.5) as conn:
                await conn.execute("Browser.close", timeout=1.0)
        except (CdpException, OSError, trio.TooSlowError) as exc:
            log.debug("Browser.close: %s", exc)
        except Exception as exc:  # noqa: BLE001 - trio-websocket handshake errors etc.
            log.debug("Browser.close failed: %r", exc)

    try:
        with one_error(RenderError, KeyboardInterrupt):
            async with open_child(
                chromium_argv(settings, spec, profile),
                name="chromium",
                polite=polite,
                policy=StopPolicy(polite_timeout=3.0, term_timeout=2.0),
                # Chromium's other temp files (its singleton socket dir, shared memory files
                # with --disable-dev-shm-usage) go into the profile too, so that they are
                # removed with it even when Chromium had to be killed.
                env={**os.environ, "TMPDIR": str(profile)},
            ) as child:
                browser._started(child)
                tail = LineTail(keep=40)
                ws_url.append(await devtools_url(child, tail, settings))
                renderer = _Renderer(spec, settings, frames, browser, child, tail)
                renderers.append(renderer)
                async with trio.open_nursery() as nursery:

                    async def pump() -> None:
                        try:
                            await pump_lines(child.stderr, tail, lambda line: chromium_log.debug("%s", redact_urls_in(line)))
                        finally:
                            renderer.stderr_done.set()

                    nursery.start_soon(pump)
                    try:
                        async with open_cdp(ws_url[0]) as cdp:
                            await renderer.run(cdp, nursery, task_status)
                    except CdpException:
                        raise await renderer._exit_error() from None
                    except (OSError, trio_websocket.HandshakeError) as exc:
                        raise RenderError(f"cannot connect to Chromium's DevTools ({exc}); its last output: {last_lines(tail)}") from None
    finally:
        browser._stopped()
        shutil.rmtree(profile, ignore_errors=True)
