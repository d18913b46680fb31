"""What a page's DevTools events mean: crashed, still loading, loaded, sent to a login page,
answered with an HTTP error, blocked by a dialog. Pure: events and times in, a new
:class:`PageState` and an :data:`Outcome` out, so the renderer's verdicts are tested by tables
of events instead of by real Chromium, and the renderer actor only carries them out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .appearance import Appearance
from .request import Auth, redact_url

#: After the main frame stopped loading, how long it must stay quiet (no new navigation,
#: e.g. a script redirecting to a login page) before we call it loaded.
SETTLE_TIME = 0.15

#: The DevTools events :func:`interpret` understands (the renderer listens to these).
EVENTS = (
    "Target.targetCrashed",
    "Target.targetDestroyed",
    "Target.detachedFromTarget",
    "Inspector.targetCrashed",
    "Inspector.detached",
    "Page.frameStartedLoading",
    "Page.frameStoppedLoading",
    "Page.frameRequestedNavigation",
    "Page.frameNavigated",
    "Page.navigatedWithinDocument",
    "Page.loadEventFired",
    "Page.javascriptDialogOpening",
    "Network.responseReceived",
)


@dataclass(frozen=True)
class PageState:
    """What the events said so far about the main frame. ``last_activity`` is the time of its
    latest navigation or load start/stop, on the caller's clock."""

    url: str
    last_activity: float
    loading: bool = True
    load_fired: bool = False
    status: int | None = None
    status_text: str = ""


@dataclass(frozen=True)
class Fail:
    """The page cannot be shown: fail the session with this message (a RenderError's)."""

    message: str
    #: ``login``: a login page, which no new Chromium fixes; ``crash`` otherwise.
    kind: str = "crash"


@dataclass(frozen=True)
class Dismiss:
    """The page opened a dialog, which blocks it until answered: answer it (``accept`` is
    False only for "leave this page?", so that the page stays). ``kind`` is for the log."""

    accept: bool
    kind: str


#: What an event asks of the renderer: nothing, fail, or answer a dialog.
Outcome = Fail | Dismiss | None


def path_under(path: str, prefix: str) -> bool:
    """Whether URL path ``path`` is ``prefix`` or below it (``/login`` matches ``/login/x``, not ``/logins``)."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or (prefix == "" and path.startswith("/"))


def crash_message(detail: str, requested_url: str) -> str:
    return (
        f"the page's renderer crashed ({detail}) while showing {requested_url}; "
        "restart the session — if it keeps happening the page may need too much memory or have a bug"
    )


def login_message(url: str, requested_url: str, login_paths: Sequence[str]) -> str | None:
    """Why landing on ``url`` is a failure, if it is one of ``login_paths`` (and the page asked
    for was not itself under it: a login page may be what the user wants to show)."""
    path = urlsplit(url).path
    requested = urlsplit(requested_url).path
    for login in login_paths:
        if login and path_under(path, login) and not path_under(requested, login):
            if login.startswith("/auth/authorize"):
                return (
                    f"{requested_url} redirected to the Home Assistant login page ({login}): the Home Assistant "
                    "credentials are missing or expired — through the Home Assistant integration, reload it (it signs "
                    "in by itself); otherwise create a long-lived access token in your Home Assistant "
                    "profile (Security tab) and pass it as the ha_token of this session"
                )
            return (
                f"{requested_url} redirected to a login page ({login}): the page needs credentials that are "
                "missing or expired — pass valid cookies, headers or localStorage in the session's auth"
            )
    return None


def _landed(state: PageState, url: str, requested_url: str, login_paths: Sequence[str]) -> tuple[PageState, Outcome]:
    message = login_message(url, requested_url, login_paths)
    return state, Fail(message, kind="login") if message else None


def interpret(
    state: PageState,
    method: str,
    params: dict[str, Any],
    session_id: str | None,
    *,
    main_target: str,
    our_session: str | None,
    now: float,
    requested_url: str,
    login_paths: Sequence[str],
) -> tuple[PageState, Outcome]:
    """One DevTools event: the page's new state and what to do about it.

    ``session_id`` is the session the event came on (None: the browser's own);
    ``main_target`` the page target's id, which is also its main frame's id; ``our_session``
    the page's DevTools session (None until attached). Events of other sessions and of
    subframes change nothing."""
    if session_id is not None and session_id != our_session:
        return state, None
    main = main_target

    def crashed(detail: str) -> tuple[PageState, Outcome]:
        return state, Fail(crash_message(detail, requested_url))

    if method == "Target.targetCrashed" and params.get("targetId") == main:
        return crashed(f"{params.get('status', 'crashed')}, code {params.get('errorCode')}")
    if method == "Inspector.targetCrashed" and session_id is not None:
        return crashed("crashed")
    if method == "Target.targetDestroyed" and params.get("targetId") == main:
        return crashed("the page was closed")
    if method == "Target.detachedFromTarget" and our_session is not None and params.get("sessionId") == our_session:
        return crashed("the page was detached")
    if method == "Inspector.detached" and session_id is not None:
        return crashed(params.get("reason", "detached"))
    if method == "Page.frameStartedLoading" and params.get("frameId") == main:
        return replace(state, loading=True, load_fired=False, last_activity=now), None
    if method == "Page.frameStoppedLoading" and params.get("frameId") == main:
        return replace(state, loading=False, last_activity=now), None
    if method == "Page.loadEventFired":
        return replace(state, load_fired=True), None
    if method == "Page.frameRequestedNavigation" and params.get("frameId") == main:
        return _landed(replace(state, last_activity=now), params.get("url", ""), requested_url, login_paths)
    if method == "Page.frameNavigated":
        frame = params.get("frame", {})
        if frame.get("id") == main and not frame.get("parentId"):
            state = replace(state, url=frame.get("url", state.url), last_activity=now)
            return _landed(state, state.url, requested_url, login_paths)
    if method == "Page.navigatedWithinDocument" and params.get("frameId") == main:
        state = replace(state, url=params.get("url", state.url))
        return _landed(state, state.url, requested_url, login_paths)
    if method == "Network.responseReceived" and params.get("type") == "Document" and params.get("frameId") == main:
        response = params.get("response", {})
        return replace(state, status=response.get("status"), status_text=response.get("statusText", "")), None
    if method == "Page.javascriptDialogOpening" and our_session is not None:
        return state, Dismiss(accept=params.get("type") != "beforeunload", kind=params.get("type", "JavaScript"))
    return state, None


def navigating(state: PageState, now: float) -> PageState:
    """We asked for a navigation: loading again, and quiet from ``now`` on."""
    return replace(state, loading=True, last_activity=now)


def settled(state: PageState, now: float, settle_time: float = SETTLE_TIME) -> bool:
    """Loaded for good: the load event fired, the main frame stopped loading and nothing
    navigated it for ``settle_time`` (a script may still send it to a login page)."""
    return state.load_fired and not state.loading and now - state.last_activity >= settle_time


def http_error(state: PageState) -> str | None:
    """Why the loaded page is an error page, from its document's HTTP status."""
    if state.status is None or state.status < 400:
        return None
    hint = " — check the credentials (auth)" if state.status in (401, 403, 407) else " — check the URL"
    return f"{redact_url(state.url)} answered HTTP {state.status} {state.status_text}".rstrip() + hint


def busy_step(fps: int, capture_fps: int | None) -> int:
    """Every how many slots of the ``fps`` grid a changing page is drawn, so that it is drawn
    (and captured) at most ``capture_fps`` times a second: 30 fps and 15 → every 2nd slot."""
    if not capture_fps or capture_fps >= fps:
        return 1
    return -(-fps // capture_fps)


@dataclass(frozen=True)
class PageSpec:
    url: str
    width: int
    height: int
    device_scale_factor: float = 1.0
    fps: int = 30
    jpeg_quality: int = 90
    auth: Auth = Auth()
    load_timeout: float = 30.0
    #: Seconds a begin-frame may take once the page runs: longer is a hung renderer.
    frame_timeout: float = 5.0
    login_paths: tuple[str, ...] = ("/auth/authorize", "/login")
    appearance: Appearance = Appearance(motion="full")
    #: Most frames a second drawn and captured while the page keeps changing; None: ``fps``.
    capture_fps: int | None = None

    @property
    def busy_step(self) -> int:
        """Slots of the ``fps`` grid between ticks while the page keeps changing."""
        return busy_step(self.fps, self.capture_fps)

    @property
    def shown_url(self) -> str:
        """The URL as errors and logs show it (``redact_url``); only navigation uses ``url``."""
        return redact_url(self.url)


@dataclass(frozen=True)
class Frame:
    jpeg: bytes = field(repr=False)
    #: Time (Trio's clock, ``trio.current_time()``) of the begin-frame that drew this picture:
    #: its slot on the steady schedule, which is also the frame time Chromium rendered for.
    captured_at: float
    index: int


#: How far after the last frame handed on a frame captured no later than it is moved.
ORDER_STEP = 0.001


def in_order(frame: Frame, last: float | None) -> Frame:
    """``frame`` as the encoder gets it after one captured at ``last``: as it is, or, if it was
    captured no later (the first frames of a Chromium that takes over from one that kept
    drawing meanwhile), moved to just after ``last``. Capture times toward the encoder only
    ever go forward, whichever Chromium drew them."""
    if last is None or frame.captured_at > last:
        return frame
    return replace(frame, captured_at=last + ORDER_STEP)
