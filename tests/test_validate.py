"""/start bodies: every mistake is caught before anything starts, with a message saying what to fix."""

from __future__ import annotations

import re

import pytest

from pagecast.core.settings import Settings
from pagecast.core.errors import InvalidRequest, NotFound
from pagecast.core.request import parse_start, redact_url

SETTINGS = Settings()
PROFILES = {"doorbell": {"url": "http://cam.local/door", "quality": "720p", "duration": 60, "auth": {"ha_token": "secret-token"}}}


def start(body):
    return parse_start(body, SETTINGS, PROFILES)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "chrome://settings", "javascript:alert(1)", "data:text/html,hi", "ftp://x/y", "about:blank"])
def test_non_http_urls_are_refused_with_the_reason(url):
    with pytest.raises(InvalidRequest, match="http:// or https://"):
        start({"url": url})


def test_missing_url_says_what_is_expected():
    with pytest.raises(InvalidRequest, match="'url' is required"):
        start({})


@pytest.mark.parametrize(
    "body, message",
    [
        ({"url": "http://x/", "quality": "8k"}, "unknown quality '8k'"),
        ({"url": "http://x/", "quality": 720}, "'quality' must be"),
        ({"url": "http://x/", "mode": "dash"}, "unknown mode 'dash'"),
        ({"url": "http://x/", "duration": "60"}, "'duration' must be a number"),
        ({"url": "http://x/", "duration": -5}, "between 0 and"),
        ({"url": "http://x/", "duration": True}, "'duration' must be a number of seconds, got true/false"),
        ({"url": "http://x/", "width": 1921}, "even numbers"),
        ({"url": "http://x/", "fps": 0}, "'fps' must be between 1 and 60"),
        ({"url": "http://x/", "colour": "red"}, "unknown field"),
        ({"url": "http://x/", "auth": "token"}, "'auth' must be an object"),
        ({"url": "http://x/", "auth": {"password": "x"}}, "unknown field"),
        ({"url": "http://x/", "auth": {"headers": {"Bad Name": "x"}}}, "invalid header name"),
        ({"url": "http://x/", "volume": 2}, "between 0.0 and 1.0"),
        ({"url": "http:///nohost"}, "no host name"),
        ({"url": "http://x/", "rotate": 180}, "'rotate' must be 0, 90 or 270 (how far the TV is turned clockwise), got 180"),
        ({"url": "http://x/", "motion": "none"}, "unknown motion 'none'; use 'reduce'"),
        ({"url": "http://x/", "theme": "blue"}, "unknown theme 'blue'; use 'dark' or 'light'"),
        ({"url": "http://x/", "kiosk": "yes"}, "'kiosk' must be true or false"),
        ({"url": "http://x/", "capture_fps": 0}, "'capture_fps' must be between 1 and the stream's fps (30)"),
        ({"url": "http://x/", "fps": 10, "capture_fps": 15}, "'capture_fps' must be between 1 and the stream's fps (10)"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_wrong_fields_get_a_clear_message(body, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start(body)


def test_defaults_come_from_settings():
    req = start({"url": "http://x/"})
    assert req.quality.name == "1080p" and (req.quality.width, req.quality.height) == (1920, 1080)
    assert req.mode == "hls" and req.duration is None


def test_a_page_reduces_its_motion_and_is_captured_at_most_15_times_a_second_unless_asked_otherwise():
    req = start({"url": "http://x/"})
    assert (req.appearance.motion, req.appearance.theme, req.appearance.kiosk, req.capture_fps) == ("reduce", None, False, 15)
    assert start({"url": "http://x/", "fps": 10}).capture_fps == 10  # never more than the stream's fps
    req = start({"url": "http://x/", "motion": "full", "theme": "dark", "kiosk": True, "capture_fps": 30})
    assert (req.appearance.motion, req.appearance.theme, req.appearance.kiosk, req.capture_fps) == ("full", "dark", True, 30)
    assert {k: req.public()[k] for k in ("motion", "theme", "kiosk", "capture_fps")} == {"motion": "full", "theme": "dark", "kiosk": True, "capture_fps": 30}
    assert start({"url": "http://x/", "burn_in": True}).appearance.burn_in == 180.0 and start({"url": "http://x/"}).appearance.burn_in == 0
    settings = Settings.from_env({"PAGECAST_MOTION": "full", "PAGECAST_CAPTURE_FPS": "30"})
    req = parse_start({"url": "http://x/"}, settings, {})
    assert (req.appearance.motion, req.capture_fps) == ("full", 30)


@pytest.mark.parametrize(
    "body, page, video, dsf, rotate",
    [
        ({"quality": "nest-hub"}, (1024, 600), (1024, 600), 1.0, 0),
        ({"quality": "nest-hub-max"}, (1280, 800), (1280, 800), 1.0, 0),
        ({"quality": "4k"}, (3840, 2160), (3840, 2160), 2.0, 0),  # a 1080p layout, twice the pixels
        ({"quality": "4k", "device_scale_factor": 1}, (3840, 2160), (3840, 2160), 1.0, 0),  # the request wins
        ({"quality": "portrait"}, (1080, 1920), (1920, 1080), 1.0, 90),  # laid out upright, sent as the TV's 1920×1080
        ({"quality": "1080p", "rotate": 270}, (1080, 1920), (1920, 1080), 1.0, 270),  # any preset on a TV turned the other way
        ({"quality": "portrait", "rotate": 0}, (1920, 1080), (1920, 1080), 1.0, 0),
    ],
)
def test_screen_presets_give_the_pages_layout_the_videos_size_and_the_pixel_ratio(body, page, video, dsf, rotate):
    req = start({"url": "http://x/", **body})
    assert (req.quality.width, req.quality.height) == page and req.quality.output == video
    assert req.device_scale_factor == dsf and req.quality.rotate == rotate


def test_explicit_overrides_change_the_preset():
    req = start({"url": "http://x/", "quality": "720p", "fps": 15, "bitrate": 2000})
    assert (req.quality.width, req.quality.fps, req.quality.bitrate_kbps) == (1280, 15, 2000)


def test_profile_expands_and_request_fields_override_it():
    req = start({"profile": "doorbell", "duration": 30})
    assert req.url == "http://cam.local/door" and req.quality.name == "720p"
    assert req.duration == 30 and req.auth.ha_token == "secret-token"


def test_unknown_profile_lists_known_ones():
    with pytest.raises(NotFound, match="known profiles: doorbell"):
        start({"profile": "frontdoor"})


def test_secrets_never_appear_in_the_public_view():
    req = start({"url": "http://user:pw@x/?token=abc&view=1", "auth": {"ha_token": "tok123", "headers": {"Authorization": "Bearer zzz"}}})
    shown = repr(req.public()) + repr(req.auth)
    for secret in ("pw", "abc", "tok123", "zzz"):
        assert secret not in shown.replace("***", "")


@pytest.mark.parametrize("url, shown", [
    ("http://u:p@h/p?access_token=1&x=2", "http://***@h/p?access_token=***&x=***"),
    ("https://ha.local:8123/lovelace/cams?kiosk&auth_sig=AbC#token=XyZ", "https://ha.local:8123/lovelace/cams?kiosk&auth_sig=***#***"),
    ("http://user@h/", "http://***@h/"),
    ("http://h/a/b?empty=", "http://h/a/b?empty=***"),
    ("http://h/plain", "http://h/plain"),
    ("http://[::1]:8123/p?t=1", "http://[::1]:8123/p?t=***"),
])
def test_a_shown_url_keeps_host_and_path_and_hides_query_values_user_info_and_fragment(url, shown):
    assert redact_url(url) == shown


def test_a_start_without_device_casts_to_the_default_device_and_null_means_stream_only():
    settings = Settings.from_env({}, default_device="Living Room TV")
    assert parse_start({"url": "http://x/"}, settings, {}).device == "Living Room TV"
    assert parse_start({"url": "http://x/", "device": None}, settings, {}).device is None
    assert parse_start({"url": "http://x/", "device": " Kitchen "}, settings, {}).device == "Kitchen"
    assert parse_start({"url": "http://x/"}, Settings.from_env({}), {}).device is None


@pytest.mark.parametrize("field", [{"keep_on": True}, {"if_idle": True}, {"volume": 0.5}])
def test_cast_options_without_a_device_are_refused(field):
    with pytest.raises(InvalidRequest, match="applies to casting; give a 'device'"):
        parse_start({"url": "http://x/", "device": None, **field}, Settings.from_env({}), {})


def test_a_home_assistant_sign_in_is_a_long_lived_token_or_a_refresh_token_never_both():
    assert start({"url": "http://ha.local/", "auth": {"ha_refresh_token": " rt "}}).auth.ha_refresh_token == "rt"
    with pytest.raises(InvalidRequest, match="not both"):
        start({"url": "http://ha.local/", "auth": {"ha_token": "t", "ha_refresh_token": "rt"}})
    with pytest.raises(InvalidRequest, match="give 'auth.ha_refresh_token' too"):
        start({"url": "http://ha.local/", "auth": {"ha_client_id": "http://ha.local/"}})


def test_a_refresh_token_is_hidden_from_repr_and_the_public_view():
    req = start({"url": "http://ha.local/", "auth": {"ha_refresh_token": "rt-secret"}})
    assert "rt-secret" not in repr(req) + str(req.auth) + str(req.public())


@pytest.mark.parametrize("body, message", [
    ({"url": "http://x/", "durration": 60}, "unknown field 'durration'; did you mean 'duration'?"),
    ({"url": "http://x/", "keepon": True}, "unknown field 'keepon'; did you mean 'keep_on'?"),
    ({"url": "http://x/", "colour": "red"}, "unknown field 'colour'; allowed: url, profile, quality"),
    ({"url": "http://x/", "auth": {"ha_tokne": "t"}}, "'auth' has unknown field 'ha_tokne'; did you mean 'ha_token'?"),
    ({"url": "http://x/", "auth": {"password": "x"}}, "'auth' has unknown field 'password'; allowed: cookies"),
    ({"profile": "doorbell", "durration": 60}, "unknown field 'durration'; did you mean 'duration'?"),
])
def test_a_misspelt_field_is_named_with_the_field_it_looks_like(body, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start(body)


@pytest.mark.parametrize("body, message", [
    ({"devcie": "TV"}, "unknown field 'devcie'; did you mean 'device'?"),
    ({"session": "abc"}, "unknown field 'session'; allowed: id, device"),
])
def test_a_misspelt_stop_field_is_named_with_the_field_it_looks_like(body, message):
    from pagecast.core.request import parse_stop

    with pytest.raises(InvalidRequest, match=re.escape(message)):
        parse_stop(body)


@pytest.mark.parametrize("text, told", [
    ('{"keep_on": False}', "False at line 1 column 13 looks like a Python value from a template: in Home Assistant write {{ value | tojson }} (JSON needs true/false/null)"),
    ('{"url": "http://x/",\n "volume": None}', "None at line 2 column 12 looks like a Python value"),
    ('{"kiosk": True}', "True at line 1 column 11 looks like a Python value"),
    ('{"kiosk": Truth}', "Expecting value at line 1 column 11"),
    ('{"url": "http://x/",}', "the body is not valid JSON: Expecting property name"),
])
def test_a_body_that_is_not_json_is_told_what_to_fix(text, told):
    import json

    from pagecast.core.request import json_error

    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(text)
    e = info.value
    assert told in json_error(e.doc, e.msg, e.pos, e.lineno, e.colno)


def test_quiet_applies_to_casting_and_needs_a_device():
    assert start({"url": "http://ha.local/", "device": "Hall TV", "quiet": True}).cast.quiet is True
    with pytest.raises(InvalidRequest, match="'quiet' applies to casting"):
        start({"url": "http://ha.local/", "device": None, "quiet": True})


def test_device_takes_one_tv_or_a_list_of_them_and_share_defaults_to_on():
    one = start({"url": "http://ha.local/", "device": "Hall TV"})
    assert one.devices == ("Hall TV",) and one.device == "Hall TV" and one.share is True
    many = start({"url": "http://ha.local/", "device": [" Kitchen ", "Hall TV"], "share": False})
    assert many.devices == ("Kitchen", "Hall TV") and many.device == "Kitchen" and many.share is False
    for wrong, says in (([], "empty list"), (["Hall TV", "Hall TV"], "twice"), (["Hall TV", " "], "empty"), ([3], "strings")):
        with pytest.raises(InvalidRequest, match=says):
            start({"url": "http://ha.local/", "device": wrong})


def test_two_starts_share_a_render_only_when_their_pictures_are_identical():
    base = {"url": "http://ha.local/lovelace/0", "device": "Hall TV", "auth": {"ha_refresh_token": "rt"}}
    first = start(base)
    assert first.same_page(start({**base, "device": "Kitchen", "volume": 0.3, "duration": 60, "quiet": True}))
    for other in ({"url": "http://ha.local/lovelace/1"}, {"auth": {"ha_refresh_token": "other"}}, {"quality": "720p"},
                  {"mode": "fmp4"}, {"theme": "dark"}, {"kiosk": True}, {"capture_fps": 5}, {"device_scale_factor": 2}):
        assert not first.same_page(start({**base, **other})), other
