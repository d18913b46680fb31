"""What the renderer makes of a page's DevTools events, as tables: events in, state and verdict out."""

from __future__ import annotations

import pytest

from pagecast.core.page import (
    SETTLE_TIME,
    Dismiss,
    Fail,
    PageState,
    http_error,
    interpret,
    login_message,
    navigating,
    path_under,
    settled,
)

URL = "http://ha.local:8123/lovelace/0"
MAIN = "TARGET1"
OURS = "SESSION1"
LOGIN_PATHS = ("/auth/authorize", "/login")
HA_LOGIN = (
    f"{URL} redirected to the Home Assistant login page (/auth/authorize): the Home Assistant credentials are "
    "missing or expired — through the Home Assistant integration, reload it (it signs in by itself); otherwise "
    "create a long-lived access token in your Home Assistant profile (Security tab) and pass it as the ha_token of this session"
)
GENERIC_LOGIN = (
    f"{URL} redirected to a login page (/login): the page needs credentials that are missing or expired — "
    "pass valid cookies, headers or localStorage in the session's auth"
)


def crash(detail: str) -> Fail:
    return Fail(
        f"the page's renderer crashed ({detail}) while showing {URL}; "
        "restart the session — if it keeps happening the page may need too much memory or have a bug"
    )


def feed(events, *, url=URL, our_session=OURS, state=None):
    """Interpret ``(time, method, params[, session_id])`` events in order: the last state and
    every outcome that was not "nothing"."""
    state = state or PageState(url, last_activity=0.0)
    outcomes = []
    for now, method, params, *session in events:
        state, outcome = interpret(
            state, method, params, session[0] if session else OURS,
            main_target=MAIN, our_session=our_session, now=now, requested_url=url, login_paths=LOGIN_PATHS,
        )
        if outcome is not None:
            outcomes.append(outcome)
    return state, outcomes


def navigated(url: str, *, parent: str | None = None, frame: str = MAIN) -> tuple[str, dict]:
    return "Page.frameNavigated", {"frame": {"id": frame, "url": url, **({"parentId": parent} if parent else {})}}


# -- crashes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, params, session, verdict",
    [
        ("Target.targetCrashed", {"targetId": MAIN, "status": "killed", "errorCode": 9}, None, crash("killed, code 9")),
        ("Target.targetCrashed", {"targetId": MAIN}, None, crash("crashed, code None")),
        ("Target.targetCrashed", {"targetId": "OTHER", "status": "killed", "errorCode": 9}, None, None),
        ("Inspector.targetCrashed", {}, OURS, crash("crashed")),
        ("Inspector.targetCrashed", {}, None, None),
        ("Target.targetDestroyed", {"targetId": MAIN}, None, crash("the page was closed")),
        ("Target.targetDestroyed", {"targetId": "OTHER"}, None, None),
        ("Target.detachedFromTarget", {"sessionId": OURS, "targetId": MAIN}, None, crash("the page was detached")),
        ("Target.detachedFromTarget", {"sessionId": "SESSION2"}, None, None),
        ("Inspector.detached", {"reason": "Render process gone."}, OURS, crash("Render process gone.")),
        ("Inspector.detached", {}, OURS, crash("detached")),
        ("Inspector.targetCrashed", {}, "SESSION2", None),
    ],
)
def test_a_crash_or_detach_of_our_page_fails_and_others_do_not(method, params, session, verdict):
    _, outcomes = feed([(1.0, method, params, session)])
    assert outcomes == ([verdict] if verdict else [])


def test_a_detach_before_we_attached_is_not_ours():
    _, outcomes = feed([(1.0, "Target.detachedFromTarget", {"sessionId": None}, None)], our_session=None)
    assert outcomes == []


def test_events_of_another_session_change_nothing():
    state, outcomes = feed([
        (1.0, *navigated("http://ha.local:8123/login"), "SESSION2"),
        (1.0, "Page.loadEventFired", {}, "SESSION2"),
        (1.0, "Page.javascriptDialogOpening", {"type": "alert"}, "SESSION2"),
    ])
    assert (state, outcomes) == (PageState(URL, last_activity=0.0), [])


# -- login pages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested, event, verdict",
    [
        (URL, navigated("http://ha.local:8123/auth/authorize?response_type=code&client_id=x"), HA_LOGIN),
        (URL, ("Page.frameRequestedNavigation", {"frameId": MAIN, "url": "http://ha.local:8123/auth/authorize"}), HA_LOGIN),
        (URL, navigated("http://ha.local:8123/login?next=/"), GENERIC_LOGIN),
        (URL, navigated("http://ha.local:8123/login/step2"), GENERIC_LOGIN),
        (URL, ("Page.navigatedWithinDocument", {"frameId": MAIN, "url": "http://ha.local:8123/login"}), GENERIC_LOGIN),
        (URL, navigated("http://ha.local:8123/logins"), None),
        (URL, navigated("http://ha.local:8123/lovelace/1"), None),
        (URL, navigated("http://ha.local:8123/login", parent="FRAME0", frame="SUB1"), None),  # an iframe's own login
        (URL, ("Page.frameRequestedNavigation", {"frameId": "SUB1", "url": "http://ha.local:8123/login"}), None),
        ("http://ha.local:8123/login", navigated("http://ha.local:8123/login?next=/"), None),  # asked for the login page
        ("http://ha.local:8123/login/x", navigated("http://ha.local:8123/login/y"), None),
        ("http://ha.local:8123/login", navigated("http://ha.local:8123/auth/authorize"), "Home Assistant login page"),
    ],
)
def test_landing_on_a_login_page_fails_unless_the_requested_url_is_one(requested, event, verdict):
    _, outcomes = feed([(1.0, *event)], url=requested)
    if verdict is None:
        assert outcomes == []
    else:
        [outcome] = outcomes
        assert isinstance(outcome, Fail) and verdict in outcome.message and outcome.kind == "login"
        assert outcome.message.startswith(f"{requested} redirected to")


@pytest.mark.parametrize(
    "path, prefix, under",
    [
        ("/login", "/login", True),
        ("/login/", "/login", True),
        ("/login/x", "/login/", True),
        ("/logins", "/login", False),
        ("/", "/login", False),
        ("/anything", "", True),
        ("/anything", "/", True),
    ],
)
def test_a_path_is_under_a_prefix_only_at_a_segment_boundary(path, prefix, under):
    assert path_under(path, prefix) is under


def test_an_empty_login_path_matches_nothing():
    assert login_message("http://x/login", URL, ("",)) is None


# -- loading and settling ------------------------------------------------------------------------

LOADED = [
    (1.0, "Page.frameStartedLoading", {"frameId": MAIN}),
    (1.1, *navigated(URL)),
    (1.4, "Page.loadEventFired", {}),
    (1.5, "Page.frameStoppedLoading", {"frameId": MAIN}),
]


#: Just before and just after the main frame has been quiet for SETTLE_TIME (float-safe).
EARLY, LATE = SETTLE_TIME - 1e-9, SETTLE_TIME + 1e-9
NAVIGATES = (1.6, "Page.frameRequestedNavigation", {"frameId": MAIN, "url": URL + "?x"})


@pytest.mark.parametrize(
    "events, now, done",
    [
        (LOADED, 1.5, False),
        (LOADED, 1.5 + EARLY, False),
        (LOADED, 1.5 + LATE, True),
        (LOADED[:3], 9.0, False),  # still loading
        ([LOADED[0], LOADED[1], LOADED[3]], 9.0, False),  # no load event
        (LOADED + [NAVIGATES], 1.5 + LATE, False),  # a script navigates (to a login page, say)
        (LOADED + [NAVIGATES], 1.6 + LATE, True),
        (LOADED + [(1.6, "Page.frameStartedLoading", {"frameId": MAIN})], 9.0, False),  # a new load: its load event is due again
        (LOADED + [(1.6, "Page.frameStartedLoading", {"frameId": "SUB1"})], 1.5 + LATE, True),  # an iframe loading
        (LOADED + [(1.6, "Page.navigatedWithinDocument", {"frameId": MAIN, "url": URL + "#tab"})], 1.5 + LATE, True),
    ],
)
def test_a_page_is_loaded_once_the_load_event_fired_and_the_main_frame_stayed_quiet(events, now, done):
    state, outcomes = feed(events)
    assert outcomes == []
    assert settled(state, now) is done


def test_navigating_again_waits_for_a_new_stop_and_quiet():
    state, _ = feed(LOADED)
    again = navigating(state, 5.0)
    assert not settled(again, 9.0)
    assert (again.loading, again.last_activity) == (True, 5.0)


def test_the_page_url_follows_redirects_and_in_document_navigation():
    state, _ = feed([
        (1.0, *navigated("http://ha.local:8123/lovelace/default_view")),
        (1.1, *navigated("http://ha.local:8123/frame", parent=MAIN, frame="SUB1")),
        (1.2, "Page.navigatedWithinDocument", {"frameId": MAIN, "url": "http://ha.local:8123/lovelace/energy"}),
    ])
    assert state.url == "http://ha.local:8123/lovelace/energy"
    assert state.last_activity == 1.0  # in-document navigation loads nothing


# -- HTTP status ----------------------------------------------------------------------------------


def response(status: int, text: str = "", *, kind: str = "Document", frame: str = MAIN) -> tuple[float, str, dict]:
    return 1.0, "Network.responseReceived", {"type": kind, "frameId": frame, "response": {"status": status, "statusText": text}}


@pytest.mark.parametrize(
    "events, error",
    [
        ([], None),
        ([response(200, "OK")], None),
        ([response(404, "Not Found")], f"{URL} answered HTTP 404 Not Found — check the URL"),
        ([response(500)], f"{URL} answered HTTP 500 — check the URL"),
        ([response(401, "Unauthorized")], f"{URL} answered HTTP 401 Unauthorized — check the credentials (auth)"),
        ([response(403)], f"{URL} answered HTTP 403 — check the credentials (auth)"),
        ([response(407, "Proxy Authentication Required")], f"{URL} answered HTTP 407 Proxy Authentication Required — check the credentials (auth)"),
        ([response(302, "Found"), response(200, "OK")], None),  # a redirect, then the page
        ([response(200), response(404, "Not Found", kind="Script")], None),  # a missing script is the page's business
        ([response(200), response(404, "Not Found", frame="SUB1")], None),  # so is a missing iframe
        (
            [(0.5, *navigated("http://ha.local:8123/moved")), response(404, "Not Found")],
            "http://ha.local:8123/moved answered HTTP 404 Not Found — check the URL",  # names where it ended up
        ),
    ],
)
def test_an_error_status_of_the_document_fails_the_load(events, error):
    state, outcomes = feed(events)
    assert outcomes == []
    assert http_error(state) == error


# -- dialogs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, verdict",
    [
        ({"type": "alert", "message": "hello"}, Dismiss(accept=True, kind="alert")),
        ({"type": "confirm"}, Dismiss(accept=True, kind="confirm")),
        ({"type": "prompt"}, Dismiss(accept=True, kind="prompt")),
        ({"type": "beforeunload"}, Dismiss(accept=False, kind="beforeunload")),  # stay on the page
        ({}, Dismiss(accept=True, kind="JavaScript")),
    ],
)
def test_dialogs_are_answered_so_the_page_keeps_running(params, verdict):
    assert feed([(1.0, "Page.javascriptDialogOpening", params)])[1] == [verdict]


def test_a_dialog_before_we_attached_is_left_alone():
    assert feed([(1.0, "Page.javascriptDialogOpening", {"type": "alert"}, None)], our_session=None)[1] == []


def test_unknown_events_change_nothing():
    start = PageState(URL, last_activity=0.0)
    assert interpret(
        start, "Page.lifecycleEvent", {"frameId": MAIN, "name": "load"}, OURS,
        main_target=MAIN, our_session=OURS, now=1.0, requested_url=URL, login_paths=LOGIN_PATHS,
    ) == (start, None)


@pytest.mark.parametrize(
    "captured_at, last, handed_on",
    [
        (10.0, None, 10.0),  # the first frame of the stream
        (10.0, 9.9, 10.0),  # later than the last: as it is
        (10.0, 10.0, 10.001),  # no later: just after the last
        (8.5, 10.0, 10.001),  # a new Chromium's first frame, captured while the old one drew on
    ],
)
def test_frames_reach_the_encoder_in_capture_order_whichever_chromium_drew_them(captured_at, last, handed_on):
    from pagecast.core.page import Frame, in_order

    frame = Frame(b"jpeg", captured_at, 3)
    out = in_order(frame, last)
    assert out.captured_at == pytest.approx(handed_on) and out.jpeg == frame.jpeg and out.index == frame.index
